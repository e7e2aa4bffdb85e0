package kernel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/notp-go/notp/internal/testcert"
)

// A direct write that the socket takes only partly (the peer's reader is
// stalled) hands the rest to the writer goroutine; everything arrives
// intact and in order, every record's MAC and sequence number checks out,
// and other senders coalesce behind the write in flight.
// Over TLS the same holds: the TLS record the socket did not take waits in
// the pollConn under it, ahead of everything written later.
func TestDirectWritePartialThenWriter(t *testing.T) {
	forPlainAndTLS(t, testDirectWritePartialThenWriter)
}

// forPlainAndTLS runs test over plain TCP and over TLS.
func forPlainAndTLS(t *testing.T, test func(t *testing.T, opt func(*Config))) {
	t.Run("plain", func(t *testing.T) { test(t, nil) })
	t.Run("tls", func(t *testing.T) {
		tc := testcert.New(t).Config
		test(t, func(c *Config) { c.TLS = tc })
	})
}

func testDirectWritePartialThenWriter(t *testing.T, opt func(*Config)) {
	checkLeaks(t)
	a, b := pair(t, false, opt)
	gate := make(chan struct{})
	var gated sync.Once
	b.Register("gate", HandlerFunc(func(Message) { gated.Do(func() { <-gate }) }))
	var got atomic.Value
	b.Register("sum", HandlerFunc(func(m Message) {
		sum := sha256.Sum256(m.Data)
		got.Store(sum)
		b.Reply(m.From, sum[:])
	}))
	var seq []int
	var mu sync.Mutex
	b.Register("seq", HandlerFunc(func(m Message) {
		var i int
		fmt.Sscan(string(m.Data), &i)
		mu.Lock()
		seq = append(seq, i)
		mu.Unlock()
	}))
	if err := a.Cast(b.Self(), "gate", nil); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 8<<20) // more than the socket buffers hold while b does not read
	for i := range body {
		body[i] = byte(i * 7)
	}
	want := sha256.Sum256(body)
	type res struct {
		data []byte
		err  error
	}
	done := make(chan res, 1)
	go func() {
		r, err := a.CallStream(context.Background(), b.Self(), "sum", bytes.NewReader(body))
		if err != nil {
			done <- res{nil, err}
			return
		}
		d, err := Collect(r, 0)
		r.Close()
		done <- res{d, err}
	}()
	// b's reader is stuck in "gate": a's direct writes fill the socket.
	waitFor(t, "a partial direct write", func() bool { return a.stats.partialWrites.Load() > 0 })
	// The casts queue behind the stalled stream. They may wait at the
	// high-water mark until b reads again, so they are sent from another
	// goroutine (sent here, they would wait for the gate this goroutine
	// opens, until the write timeout cut the connection).
	casts := make(chan error, 1)
	go func() {
		for i := range 100 {
			if err := a.Cast(b.Self(), "seq", []byte(fmt.Sprint(i))); err != nil {
				casts <- err
				return
			}
		}
		casts <- nil
	}()
	close(gate)
	if err := <-casts; err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || !bytes.Equal(r.data, want[:]) {
		t.Fatalf("CallStream through a stalled socket = %x, %v; want %x", r.data, r.err, want)
	}
	waitFor(t, "casts after the stream", func() bool { mu.Lock(); defer mu.Unlock(); return len(seq) == 100 })
	for i, v := range seq {
		if v != i {
			t.Fatalf("cast %d arrived as %d: order lost", i, v)
		}
	}
	if st := b.Stats(); st.RejectedBadMAC+st.RejectedBadFrame != 0 {
		t.Fatalf("records rejected: %+v", st)
	}
	// The connection is still healthy and idle sends go out directly.
	if _, err := a.Call(ctxT(t), b.Self(), "sum", []byte("x")); err != nil {
		t.Fatal(err)
	}
}

// Concurrent callers and casters on one connection: every message arrives,
// no record is rejected (MAC sequence numbers stay in wire order).
func TestConcurrentSendersKeepMACOrder(t *testing.T) {
	forPlainAndTLS(t, testConcurrentSendersKeepMACOrder)
}

func testConcurrentSendersKeepMACOrder(t *testing.T, opt func(*Config)) {
	checkLeaks(t)
	a, b := pair(t, true, opt)
	echo(t, b, "echo")
	echo(t, a, "echo")
	var casts atomic.Int64
	b.Register("sink", HandlerFunc(func(Message) { casts.Add(1) }))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				p := []byte(fmt.Sprint(g, i))
				if g%4 == 0 {
					if err := a.Cast(b.Self(), "sink", p); err != nil {
						errs <- err
						return
					}
					continue
				}
				from, to := a, b
				if g%4 == 1 {
					from, to = b, a
				}
				got, err := from.Call(ctxT(t), to.Self(), "echo", p)
				if err != nil || !bytes.Equal(got, p) {
					errs <- fmt.Errorf("call %d/%d = %q, %v", g, i, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, "casts", func() bool { return casts.Load() == 4*200 })
	for _, k := range []*Kernel{a, b} {
		if st := k.Stats(); st.RejectedBadMAC+st.RejectedBadFrame != 0 {
			t.Fatalf("records rejected: %+v", st)
		}
	}
}

// The per-connection cache of target names returns equal strings, reuses
// them, and stays bounded whatever names a peer sends.
func TestInternNameBounded(t *testing.T) {
	s := &session{names: map[string]string{}}
	first := s.internName([]byte("echo"))
	if again := s.internName([]byte("echo")); again != "echo" || unsafe.StringData(again) != unsafe.StringData(first) {
		t.Fatalf("internName did not reuse %q", first)
	}
	for i := range 1000 {
		name := fmt.Sprint("actor-", i)
		if got := s.internName([]byte(name)); got != name {
			t.Fatalf("internName(%q) = %q", name, got)
		}
	}
	if long := string(bytes.Repeat([]byte("x"), 100)); s.internName([]byte(long)) != long {
		t.Fatal("long name altered")
	}
	if len(s.names) > maxInternedNames {
		t.Fatalf("%d names cached, bound is %d", len(s.names), maxInternedNames)
	}
}

// bigBuffer returns the capacity of a's largest write buffer to b, which
// must be idle (the buffers belong to the writer while one is in flight).
func bigBuffer(a, b *Kernel) int {
	s := a.sessionTo(b.Self().ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flushing {
		panic("bigBuffer: a write is in flight")
	}
	return max(cap(s.buf), cap(s.spare), cap(s.out))
}

// queued returns how many bytes wait in a's send buffer to b.
func queued(a, b *Kernel) int {
	s := a.sessionTo(b.Self().ID)
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf)
}
