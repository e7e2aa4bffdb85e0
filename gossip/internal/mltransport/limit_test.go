package mltransport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/notp-go/notp/internal/testutil"
	"net"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// limitedMember is a member whose transport has cfg; tcpTimeout is
// memberlist's TCPTimeout.
func limitedMember(t *testing.T, id string, cfg Config, tcpTimeout time.Duration) *member {
	t.Helper()
	k := startKernel(t, kernelConfig(t, id, "c"))
	cfg.Logger = testutil.Logger(t)
	tr, err := NewWithConfig(k, cfg)
	if err != nil {
		t.Fatalf("NewWithConfig: %v", err)
	}
	t.Cleanup(func() { tr.Shutdown() })
	m := &member{node: node{k, tr}, log: newLogSink(t), events: &eventLog{}}
	mc := memberConfig(t, m.node, "c", m.log, m.events)
	mc.TCPTimeout = tcpTimeout
	ml, err := memberlist.Create(mc)
	if err != nil {
		t.Fatalf("memberlist.Create: %v", err)
	}
	t.Cleanup(func() { ml.Shutdown() })
	m.ml = ml
	return m
}

// dialStream opens a memberlist stream to m through its kernel's mux.
func dialStream(t *testing.T, m *member) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := m.k.Dial(ctx, m.addr(), Proto)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Ten unauthenticated streams that each claim and send a 20 MB encrypted
// state: memberlist reads at most MaxStreamBytes of each and
// MaxInboundBytes of all, the node's heap stays far below what the streams
// sent, and a real join still works afterwards.
func TestStreamByteLimit(t *testing.T) {
	for _, cfg := range []Config{{}, {MaxStreamBytes: 1 << 20}} {
		cfg.StreamTimeout = time.Minute // only the byte limits end the streams
		t.Run(fmt.Sprintf("MaxStreamBytes=%d", cfg.MaxStreamBytes), func(t *testing.T) {
			testutil.CheckLeaks(t)
			streamJunk(t, cfg)
		})
	}
}

func streamJunk(t *testing.T, cfg Config) {
	a := limitedMember(t, "a", cfg, time.Minute)
	lim := a.tr.cfg
	const streams, size = 10, 20_000_000
	junk := make([]byte, 1<<20)
	var held atomic.Int64 // the most bytes the open streams had read at once
	stop := testutil.HeapPeak(func() {
		a.tr.smu.Lock()
		n := a.tr.inBytes
		a.tr.smu.Unlock()
		if n > held.Load() {
			held.Store(n)
		}
	})
	var wg sync.WaitGroup
	for range streams {
		c := dialStream(t, a)
		wg.Go(func() {
			hdr := binary.BigEndian.AppendUint32([]byte{10}, size) // memberlist's encryptMsg and a length
			if _, err := c.Write(hdr); err != nil {
				return
			}
			for sent := 0; sent < size; sent += len(junk) {
				if _, err := c.Write(junk); err != nil {
					return // the node dropped the stream
				}
			}
		})
	}
	wg.Wait() // every stream sent all or was dropped
	peak := stop()
	st := a.tr.Stats()
	t.Logf("heap peak growth %d MB; streams read %d bytes, at most %d at once", peak>>20, st.StreamBytesIn, held.Load())
	// Each stream is cut at the byte limit or, past MaxStreams open at
	// once, refused as it arrives.
	if st.StreamsTooLarge == 0 || st.StreamsTooLarge+st.RejectedStreams != streams {
		t.Errorf("%d streams over the limit and %d refused, want %d in all", st.StreamsTooLarge, st.RejectedStreams, streams)
	}
	if st.StreamBytesIn > uint64(streams*lim.MaxStreamBytes) {
		t.Errorf("memberlist read %d bytes of %d streams limited to %d each", st.StreamBytesIn, streams, lim.MaxStreamBytes)
	}
	if held.Load() > lim.MaxInboundBytes {
		t.Errorf("open streams held %d bytes at once, limit %d", held.Load(), lim.MaxInboundBytes)
	}
	if bound := 6*uint64(lim.MaxInboundBytes) + 16<<20; peak > bound { // buffers double; GC lags
		t.Errorf("heap grew by %d MB under %d MB of stream junk, want at most %d MB", peak>>20, streams*size>>20, bound>>20)
	}
	testutil.WaitFor(t, "the junk streams closed", func() bool {
		a.tr.smu.Lock()
		defer a.tr.smu.Unlock()
		return a.tr.openStreams == 0 && a.tr.inBytes == 0
	})
	b := limitedMember(t, "b", Config{}, 2*time.Second)
	join(t, b, a)
	converged(t, []*member{a, b}, "a", "b")
}

// Streams over MaxStreams are closed as they arrive; the slots come back
// when memberlist closes the streams it holds.
func TestStreamConcurrencyCap(t *testing.T) {
	testutil.CheckLeaks(t)
	const max = 4
	a := limitedMember(t, "a", Config{MaxStreams: max, StreamTimeout: time.Minute}, time.Minute)
	var held []net.Conn
	for range max + 3 {
		held = append(held, dialStream(t, a))
	}
	testutil.WaitFor(t, "extra streams refused", func() bool { return a.tr.Stats().RejectedStreams == 3 })
	if s := a.tr.Stats(); s.StreamsIn != max {
		t.Fatalf("%d streams handed to memberlist, want %d", s.StreamsIn, max)
	}
	for _, c := range held {
		c.Close() // memberlist's read fails and it closes its end
	}
	testutil.WaitFor(t, "slots given back", func() bool {
		a.tr.smu.Lock()
		defer a.tr.smu.Unlock()
		return a.tr.openStreams == 0
	})
	b := limitedMember(t, "b", Config{}, 2*time.Second)
	join(t, b, a)
	converged(t, []*member{a, b}, "a", "b")
}

// A silent stream is closed at StreamTimeout, though memberlist itself
// would wait for its (here one-minute) TCPTimeout.
func TestStreamTimeout(t *testing.T) {
	testutil.CheckLeaks(t)
	a := limitedMember(t, "a", Config{StreamTimeout: 100 * time.Millisecond}, time.Minute)
	c := dialStream(t, a)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from a silent stream: %v, want the node to close it", err)
	}
	if s := a.tr.Stats(); s.StreamTimeouts != 1 {
		t.Fatalf("StreamTimeouts %d, want 1", s.StreamTimeouts)
	}
}

func TestConfigDefaults(t *testing.T) {
	got, err := Config{}.withDefaults()
	want := Config{MaxStreams: DefaultMaxStreams, MaxStreamBytes: DefaultMaxStreamBytes,
		MaxInboundBytes: DefaultMaxInboundBytes, StreamTimeout: DefaultStreamTimeout}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults %+v, %v; want %+v", got, err, want)
	}
	if _, err := (Config{MaxStreams: -1}).withDefaults(); err == nil {
		t.Fatal("a negative MaxStreams was accepted")
	}
}
