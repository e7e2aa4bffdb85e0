package kernel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/internal/wire"
)

// dialFrom opens n TCP connections to k from the local IP from (any
// 127.0.0.0/8 address is loopback on Linux) that send nothing, closed at
// cleanup. Connections the kernel refuses at once still count: the
// kernel closes them after accepting.
func dialFrom(t *testing.T, k *Kernel, from string, n int) []net.Conn {
	t.Helper()
	var cs []net.Conn
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	for range n {
		c, err := d.Dial("tcp", k.Addr().String())
		if err != nil {
			t.Fatalf("dial from %s: %v", from, err)
		}
		t.Cleanup(func() { c.Close() })
		cs = append(cs, c)
	}
	return cs
}

// An idle crowd from one IP holds at most MaxPendingPerIP slots; the rest
// are closed at once and counted, and a peer from another IP still gets
// through while the crowd waits.
func TestPendingConnsPerIP(t *testing.T) {
	k := startKernel(t, func(c *Config) { c.HandshakeTimeout = time.Minute })
	echo(t, k, "echo")
	dialFrom(t, k, "127.0.0.2", 1000)
	waitFor(t, "the crowd accepted", func() bool {
		st := k.Stats()
		return st.RejectedPerIP+uint64(st.PendingConnections) == 1000
	})
	st := k.Stats()
	if st.PendingConnections != DefaultMaxPendingPerIP || st.RejectedPerIP != 1000-DefaultMaxPendingPerIP {
		t.Fatalf("pending %d, rejected per IP %d; want %d and %d",
			st.PendingConnections, st.RejectedPerIP, DefaultMaxPendingPerIP, 1000-DefaultMaxPendingPerIP)
	}
	good := startKernel(t, nil) // dials from 127.0.0.1
	connect(t, good, k)
	if got, err := good.Call(ctxT(t), k.Self(), "echo", []byte("hi")); err != nil || string(got) != "hi" {
		t.Fatalf("call during the crowd: %q, %v", got, err)
	}
	if p := k.Stats().PendingConnections; p != DefaultMaxPendingPerIP {
		t.Fatalf("pending after a good peer's hello: %d, want %d", p, DefaultMaxPendingPerIP)
	}
}

// Crowds from many IPs together hold at most MaxPendingConns slots; the
// slots come back when the connections go, and then a peer gets through.
func TestPendingConnsTotal(t *testing.T) {
	const max = 16
	k := startKernel(t, func(c *Config) { c.HandshakeTimeout = time.Minute; c.MaxPendingConns = max })
	echo(t, k, "echo")
	var crowd []net.Conn
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		crowd = append(crowd, dialFrom(t, k, ip, 10)...)
	}
	waitFor(t, "the crowd accepted", func() bool {
		st := k.Stats()
		return st.RejectedPending+uint64(st.PendingConnections) == 30
	})
	if st := k.Stats(); st.PendingConnections != max || st.RejectedPending != 30-max || st.RejectedPerIP != 0 {
		t.Fatalf("pending %d, rejected %d (per IP %d); want %d and %d", st.PendingConnections, st.RejectedPending, st.RejectedPerIP, max, 30-max)
	}
	for _, c := range crowd {
		c.Close()
	}
	waitFor(t, "slots given back", func() bool { return k.Stats().PendingConnections == 0 })
	good := startKernel(t, nil)
	connect(t, good, k)
	if got, err := good.Call(ctxT(t), k.Self(), "echo", []byte("hi")); err != nil || string(got) != "hi" {
		t.Fatalf("call after the crowd: %q, %v", got, err)
	}
	if st := k.Stats(); st.RejectedPending != 30-max || st.PendingConnections != 0 {
		t.Fatalf("after the good peer: rejected %d, pending %d", st.RejectedPending, st.PendingConnections)
	}
}

// budgetVictim starts a kernel with an echo handler "h" and a good peer;
// check asserts that the good peer's calls are answered.
func budgetVictim(t *testing.T, opt func(*Config)) (k *Kernel, check func()) {
	checkLeaks(t)
	good := startKernel(t, opt)
	k = startKernel(t, opt)
	echo(t, k, "h")
	connect(t, good, k)
	return k, func() {
		t.Helper()
		if got, err := good.Call(ctxT(t), k.Self(), "h", []byte("ok")); err != nil || string(got) != "ok" {
			t.Fatalf("good peer Call = %q, %v", got, err)
		}
	}
}

// maxUnwritten returns the most unwritten bytes of k's sessions.
func maxUnwritten(k *Kernel) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for s := range k.sessions {
		n = max(n, s.unwritten())
	}
	return n
}

// A cookie holder that sends echo calls and never reads the replies: the
// node stops reading it once its replies pile up past the high-water
// mark, so the node holds a few megabytes instead of every reply; another
// peer's calls still work; the write timeout closes the greedy peer.
func TestBudgetUnreadReplies(t *testing.T) {
	checkLeaks(t)
	k, check := budgetVictim(t, func(c *Config) { c.WriteTimeout = 3 * time.Second })
	p, err := dialRaw(t, k, testCookie)
	if err != nil {
		t.Fatal(err)
	}
	var rec []byte
	for range 16 {
		rec = append(rec, frame(&wire.Envelope{Kind: wire.KindMsg, ID: "h", Tag: "t", Data: make([]byte, 60<<10)})...)
	}
	const total = 200 << 20
	stop := testutil.HeapPeak()
	sent := 0
	for sent < total {
		p.c.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := p.c.Write(p.record(rec))
		sent += n
		if err != nil {
			break // the node stopped reading us
		}
	}
	peak := stop()
	t.Logf("sent %d MB before the node stopped reading; heap peak growth %d MB; unwritten %d KB",
		sent>>20, peak>>20, maxUnwritten(k)>>10)
	if sent >= total {
		t.Errorf("the node read all %d MB of calls whose replies nobody reads", total>>20)
	}
	if peak > 64<<20 {
		t.Errorf("heap grew by %d MB", peak>>20)
	}
	if n := maxUnwritten(k); n > replyHighWater+2*len(rec) {
		t.Errorf("%d bytes unwritten, want at most the high-water mark and a record's replies", n)
	}
	if k.Stats().BudgetPauses == 0 {
		t.Error("no budget pause counted")
	}
	check() // another peer is served meanwhile
	waitFor(t, "the greedy peer closed by the write timeout", func() bool { return k.Stats().BudgetCloses == 1 })
	check()
}

// A cookie holder opens 100 streams of 256 KiB and never finishes them:
// once its partial streams would pass MaxPeerBytes the node aborts the
// stream (counted) and closes the connection, which frees them all; the
// heap never grows far past the budget, and another peer's calls still
// work.
func TestBudgetPartialStreams(t *testing.T) {
	const budget = 4 << 20
	k, check := budgetVictim(t, func(c *Config) { c.MaxPeerBytes = budget; c.MaxStreamSize = budget })
	p, err := dialRaw(t, k, testCookie)
	if err != nil {
		t.Fatal(err)
	}
	const streams, chunks = 100, 4 // 4 × 64 KiB = 256 KiB per stream
	stop := testutil.HeapPeak()
	chunk := make([]byte, ChunkSize)
	var rec []byte
	sent := 0
send:
	for range chunks {
		for i := range streams {
			st := &wire.Stream{ID: fmt.Sprintf("s%d", i)}
			rec = append(rec, frame(&wire.Envelope{Kind: wire.KindMsg, ID: "h", Stream: st, Data: chunk})...)
			if len(rec) >= 1<<20 || i == streams-1 {
				if _, err := p.c.Write(p.record(rec)); err != nil {
					break send // the node closed the connection, as it should
				}
				sent += len(rec)
				rec = rec[:0]
			}
		}
	}
	p.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, p.c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the greedy connection was not closed: %v", err)
	}
	waitFor(t, "the stream over the budget aborted", func() bool { return k.Stats().BudgetStreamAborts == 1 })
	peak := stop()
	rec = nil
	t.Logf("sent %d KB of partial streams before the node closed the connection; heap peak growth %d MB", sent>>10, peak>>20)
	if peak > 3*budget {
		t.Errorf("heap grew by %d MB for a %d MB budget", peak>>20, budget>>20)
	}
	check()
}

func TestBudgetConfig(t *testing.T) {
	for _, tc := range []struct {
		in          Config
		want        int64 // MaxPeerBytes after defaults; 0 = New fails
		pend, perIP int
	}{
		{in: Config{}, want: DefaultMaxPeerBytes, pend: DefaultMaxPendingConns, perIP: DefaultMaxPendingPerIP},
		{in: Config{MaxStreamSize: 100 << 20}, want: 100 << 20, pend: DefaultMaxPendingConns, perIP: DefaultMaxPendingPerIP},
		{in: Config{MaxPeerBytes: 1 << 20}},
		{in: Config{MaxPeerBytes: 20 << 20, MaxPendingConns: 5, MaxPendingPerIP: 2}, want: 20 << 20, pend: 5, perIP: 2},
	} {
		cfg := tc.in
		cfg.Node, cfg.Cookie = testConfig(t).Node, testCookie
		k, err := New(cfg)
		if tc.want == 0 {
			if err == nil {
				t.Errorf("%+v: New accepted MaxPeerBytes below MaxStreamSize", tc.in)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%+v: %v", tc.in, err)
		}
		if k.cfg.MaxPeerBytes != tc.want || k.cfg.MaxPendingConns != tc.pend || k.cfg.MaxPendingPerIP != tc.perIP {
			t.Errorf("%+v: MaxPeerBytes %d, MaxPendingConns %d, MaxPendingPerIP %d; want %d, %d, %d", tc.in,
				k.cfg.MaxPeerBytes, k.cfg.MaxPendingConns, k.cfg.MaxPendingPerIP, tc.want, tc.pend, tc.perIP)
		}
	}
}

// Only replies count toward the reader's mark: a node with megabytes of
// its own calls unwritten on a link keeps reading the replies to them.
// Were requests counted too, the caller would stop reading replies while
// its calls piled up, and two nodes calling each other could each wait for
// the other to read until the write timeout cut the link.
func TestBudgetOwnCallsDoNotStopReader(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, false, func(c *Config) { c.WriteTimeout = time.Minute })
	echo(t, b, "echo")
	body := make([]byte, 256<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			for range 2 {
				if _, err := a.Call(ctx, b.Self(), "echo", body); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("call: %v", err)
	}
	if st := a.Stats(); st.BudgetPauses != 0 || st.BudgetCloses != 0 {
		t.Fatalf("the caller paused its reader %d times, closed %d", st.BudgetPauses, st.BudgetCloses)
	}
}

// A handler that queues messages and holds them (Message.Hold), as an
// actor's mailbox does: once it holds more than MaxPeerBytes of a peer's
// messages the connection's reader waits, so the peer cannot make the
// node queue more; releasing lets the rest in.
func TestBudgetHeldMessages(t *testing.T) {
	checkLeaks(t)
	const budget = 4 << 20
	a, b := pair(t, false, func(c *Config) { c.MaxPeerBytes = budget; c.MaxStreamSize = budget; c.WriteTimeout = time.Minute })
	var mu sync.Mutex
	var releases []func()
	got := 0
	b.Register("queue", HandlerFunc(func(m Message) {
		release := m.Hold()
		mu.Lock()
		releases = append(releases, release)
		got++
		mu.Unlock()
	}))
	const casts, size = 200, 64 << 10 // 12.5 MiB
	done := make(chan error, 1)
	go func() {
		for range casts {
			if err := a.Cast(b.Self(), "queue", make([]byte, size)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	waitFor(t, "the reader to wait for held messages", func() bool { return b.Stats().BudgetPauses > 0 })
	held := b.Stats().HeldBytes
	mu.Lock()
	n := got
	mu.Unlock()
	t.Logf("%d of %d casts delivered and held (%d KiB) when the reader stopped", n, casts, held>>10)
	if held > budget+DefaultMaxFrameSize || n == casts {
		t.Fatalf("handlers hold %d bytes (%d casts) for a %d budget", held, n, budget)
	}
	// Release as they come: the rest arrives.
	waitFor(t, "every cast delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range releases {
			r()
		}
		releases = releases[:0]
		return got == casts
	})
	if err := <-done; err != nil {
		t.Fatalf("cast: %v", err)
	}
	if h := b.Stats().HeldBytes; h != 0 {
		t.Fatalf("HeldBytes %d after every release", h)
	}
	if c := b.Stats().BudgetCloses; c != 0 {
		t.Fatalf("%d connections closed", c)
	}
}

// A partial stream costs what it was sent: its chunks are kept as they
// came and joined only at its end, so a peer that leaves many streams
// unfinished makes the node allocate about their size, not the doubling
// and copying of one growing buffer per stream (which left as much
// garbage again as it held, and drove a node's memory well past its
// budget under that attack).
func TestPartialStreamAllocatesItsSize(t *testing.T) {
	k, check := budgetVictim(t, nil)
	p, err := dialRaw(t, k, testCookie)
	if err != nil {
		t.Fatal(err)
	}
	const chunks = 64 // 64 × 64 KiB = 4 MiB, never finished
	chunk := make([]byte, ChunkSize)
	var recs [][]byte
	for range chunks {
		f := frame(&wire.Envelope{Kind: wire.KindMsg, ID: "h", Stream: &wire.Stream{ID: "s"}, Data: chunk})
		recs = append(recs, p.record(f))
	}
	alloc := testutil.Allocated(func() {
		for _, r := range recs {
			if _, err := p.c.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "all chunks read", func() bool { return k.Stats().FramesIn >= chunks })
	})
	sent := uint64(chunks * ChunkSize)
	t.Logf("a %d KiB partial stream allocated %d KiB (%.2fx)", sent>>10, alloc>>10, float64(alloc)/float64(sent))
	if alloc > sent*3/2 {
		t.Errorf("a %d KiB partial stream allocated %d KiB, want at most 1.5x its size", sent>>10, alloc>>10)
	}
	check()
}
