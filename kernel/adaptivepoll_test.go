package kernel

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/notp-go/notp/internal/testcert"
)

// The adaptive window follows the wait for data after the socket ran dry.
func TestNextWindow(t *testing.T) {
	us := time.Microsecond
	for _, tc := range []struct {
		name      string
		w, waited time.Duration
		hit       bool
		want      time.Duration
	}{
		{"idle reader, data soon after: start polling", 0, 80 * us, false, pollWindowMin},
		{"idle reader, sparse data: stay idle", 0, 5 * time.Millisecond, false, 0},
		{"miss, data just after: grow", 20 * us, 100 * us, false, 40 * us},
		{"grow stops at the bound", 160 * us, 190 * us, false, pollWindowMax},
		{"hit: keep", 40 * us, 15 * us, true, 40 * us},
		{"hit well inside: shrink", 80 * us, 5 * us, true, 40 * us},
		{"shrink stops at the bound", pollWindowMin, us, true, pollWindowMin},
		{"miss, then a long gap: stop at once", pollWindowMax, pollWindowMax + us, false, 0},
		{"idle for seconds: stop", 40 * us, 3 * time.Second, false, 0},
	} {
		if got := nextWindow(tc.w, tc.waited, tc.hit); got != tc.want {
			t.Errorf("%s: nextWindow(%v, %v, %v) = %v, want %v", tc.name, tc.w, tc.waited, tc.hit, got, tc.want)
		}
	}

}

// An adaptive reader starts polling only after pollStartAfter short waits
// in a row, keeps a window that covers a tight loop's gaps, and stops at
// the first long one.
func TestAdaptiveState(t *testing.T) {
	us := time.Microsecond
	var a adaptive
	// A request/response loop whose replies take 30 µs, of which a
	// sleeping reader sees ~130 µs.
	polled := 0
	for i := 0; i < 12; i++ {
		w := a.window()
		waited := 30 * us
		hit := w >= waited
		if w > 0 {
			polled++
		}
		if !hit {
			waited += 100 * us // the poller's wake-up
		}
		a.update(waited, hit)
	}
	if polled < 12-pollStartAfter-1 {
		t.Fatalf("tight loop: polled after %d of 12 dry reads, want all but the first %d", polled, pollStartAfter)
	}
	if w := a.window(); w < 30*us || w > pollWindowMax {
		t.Fatalf("tight loop: window %v, want one covering 30 µs within bounds", w)
	}
	// The first gap of sparse traffic stops it.
	a.update(5*time.Millisecond, false)
	if w := a.window(); w != 0 {
		t.Fatalf("sparse traffic: window %v, want 0", w)
	}
	// Sparse traffic with short gaps now and then (two in a row at most)
	// never polls.
	for i := 0; i < 300; i++ {
		waited := 5 * time.Millisecond
		if i%7 == 0 || i%7 == 1 {
			waited = 50 * us
		}
		if w := a.window(); w != 0 {
			t.Fatalf("sparse record %d: window %v, want 0", i, w)
		}
		a.update(waited, false)
	}
	a.stop()
	if a.window() != 0 {
		t.Fatal("stop left a window")
	}
}

// The cap on concurrent pollers holds under contention and frees its slots.
func TestPollerCap(t *testing.T) {
	var st stats
	p := newPoller(0, 2, &st)
	if !p.acquire() || !p.acquire() {
		t.Fatal("could not take 2 of 2 slots")
	}
	if p.acquire() {
		t.Fatal("took a third slot of 2")
	}
	p.release()
	p.release()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				if p.acquire() {
					if n := p.active.Load(); n > 2 {
						t.Errorf("%d pollers at once, cap 2", n)
					}
					runtime.Gosched()
					p.release()
				}
			}
		}()
	}
	wg.Wait()
	if n := p.active.Load(); n != 0 {
		t.Fatalf("%d slots still taken", n)
	}
	if peak := st.pollPeak.Load(); peak < 1 || peak > 2 {
		t.Fatalf("peak %d pollers, want 1..2", peak)
	}
}

func skipNoRaw(t *testing.T) {
	if !rawWriteSupported {
		t.Skip("no non-blocking reads on " + runtime.GOOS)
	}
}

// noContention makes polling readers ignore how long their attempts take, so that tests of the other decisions hold on a loaded
// machine.
func noContention(t *testing.T) {
	old := pollContended.Load()
	pollContended.Store(int64(time.Hour))
	t.Cleanup(func() { pollContended.Store(old) })
}

// callUntil makes sequential echo calls from a to b until cond holds.
func callUntil(t *testing.T, a, b *Kernel, what string, cond func() bool) {
	t.Helper()
	ctx := ctxT(t)
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; !cond(); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %d calls: %+v / %+v", what, i, a.Stats(), b.Stats())
		}
		if _, err := a.Call(ctx, b.Self(), "echo", []byte("ping")); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

func polls(ks ...*Kernel) uint64 {
	var n uint64
	for _, k := range ks {
		s := k.Stats()
		n += s.PollHits + s.PollMisses
	}
	return n
}

// adaptivePair starts two kernels with the default, adaptive polling, a
// connected to b and b echoing under "echo": over plain TCP, or over
// mutual TLS, where the readers poll the TCP connection under tls.Conn.
func adaptivePair(t *testing.T, useTLS bool) (*Kernel, *Kernel) {
	t.Helper()
	var opt func(*Config)
	if useTLS {
		tc := testcert.New(t).Config
		opt = func(c *Config) { c.TLS = tc }
	}
	a, b := pair(t, false, opt)
	echo(t, b, "echo")
	return a, b
}

// pollingPair is adaptivePair once a tight call loop has made both
// readers' polls find data, with leak checks and contention ignored.
func pollingPair(t *testing.T, useTLS bool) (*Kernel, *Kernel) {
	t.Helper()
	checkLeaks(t)
	noContention(t)
	a, b := adaptivePair(t, useTLS)
	callUntil(t, a, b, "poll hits on both sides", func() bool {
		return a.Stats().PollHits > 0 && b.Stats().PollHits > 0
	})
	return a, b
}

// By default, a tight request/response loop makes both readers poll, and
// the polls find the next record; over TLS too.
func TestAdaptivePollStarts(t *testing.T) {
	skipNoRaw(t)
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprint("tls=", useTLS), func(t *testing.T) {
			a, b := pollingPair(t, useTLS)
			if a.Stats().PollNanos == 0 || b.Stats().PollNanos == 0 {
				t.Fatalf("polling time not counted: %+v / %+v", a.Stats(), b.Stats())
			}
		})
	}
}

// Once the traffic turns sparse, the readers stop polling at once: at most
// one poll each (the first gap's miss), not one per record; over TLS too.
func TestAdaptivePollStopsOnSparse(t *testing.T) {
	skipNoRaw(t)
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprint("tls=", useTLS), func(t *testing.T) {
			a, b := pollingPair(t, useTLS)
			before := polls(a, b)
			ctx := ctxT(t)
			const calls = 20
			tick := time.NewTicker(3 * time.Millisecond) // the traffic's pace: ~330 calls/s
			defer tick.Stop()
			for i := range calls {
				<-tick.C
				if _, err := a.Call(ctx, b.Self(), "echo", []byte("sparse")); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
			}
			// Each reader may poll once when the sparse traffic starts, and
			// once more after the rare gap that a loaded machine shortens.
			if n := polls(a, b) - before; n > 4 {
				t.Fatalf("%d polls during %d sparse calls (%d dry reads), want at most 4: %+v / %+v",
					n, calls, 2*calls, a.Stats(), b.Stats())
			}
		})
	}
}

// BusyPollOff: no reader ever polls.
func TestBusyPollOff(t *testing.T) {
	skipNoRaw(t)
	checkLeaks(t)
	a, b := pair(t, false, func(c *Config) { c.BusyPoll = BusyPollOff })
	echo(t, b, "echo")
	ctx := ctxT(t)
	for i := range 300 {
		if _, err := a.Call(ctx, b.Self(), "echo", []byte("x")); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	for _, k := range []*Kernel{a, b} {
		if s := k.Stats(); s.PollHits+s.PollMisses+s.PollCapped+s.PollNanos != 0 {
			t.Fatalf("polling with BusyPollOff: %+v", s)
		}
	}
}

// With MaxPollers 1, a kernel calling three peers in tight loops never has
// two readers polling at once; the others sleep in the poller.
func TestAdaptivePollCap(t *testing.T) {
	skipNoRaw(t)
	checkLeaks(t)
	noContention(t)
	a := startKernel(t, func(c *Config) { c.MaxPollers = 1 })
	var peers []*Kernel
	for range 3 {
		p := startKernel(t, nil)
		echo(t, p, "echo")
		connect(t, a, p)
		peers = append(peers, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if s := a.Stats(); s.PollCapped > 0 && s.PollHits > 0 {
					cancel()
					return
				}
				if _, err := a.Call(ctx, p.Self(), "echo", []byte("x")); err != nil && ctx.Err() == nil {
					t.Errorf("call: %v", err)
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	s := a.Stats()
	if s.PollCapped == 0 || s.PollHits == 0 {
		t.Fatalf("the cap was never reached, or polls never hit: %+v", s)
	}
	if peak := a.stats.pollPeak.Load(); peak != 1 {
		t.Fatalf("%d readers polled at once, MaxPollers 1", peak)
	}
}

// Close stops readers while they poll: calls in flight fail, the polling
// slots are freed and no goroutine survives. Adaptively, under a tight
// loop; and with a fixed 1 s window, whose readers surely poll when Close
// comes (and Close must not wait for the window).
func TestAdaptivePollShutdown(t *testing.T) {
	skipNoRaw(t)
	for _, busy := range []time.Duration{0, time.Second} {
		t.Run(fmt.Sprint("BusyPoll=", busy), func(t *testing.T) {
			checkLeaks(t)
			noContention(t)
			a, b := pair(t, false, func(c *Config) { c.BusyPoll = busy })
			echo(t, b, "echo")
			ctx := ctxT(t)
			done := make(chan error, 1)
			go func() {
				for {
					if _, err := a.Call(ctx, b.Self(), "echo", []byte("x")); err != nil {
						done <- err
						return
					}
				}
			}()
			deadline := time.Now().Add(10 * time.Second)
			for a.poller.active.Load()+b.poller.active.Load() == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("no reader seen polling: %+v / %+v", a.Stats(), b.Stats())
				}
				runtime.Gosched()
			}
			start := time.Now()
			b.Close()
			a.Close()
			if d := time.Since(start); d > busy/2+100*time.Millisecond {
				t.Fatalf("Close took %v", d)
			}
			select {
			case err := <-done:
				if !errors.Is(err, ErrClosed) && !errors.Is(err, ErrConnectionLost) && !errors.Is(err, ErrNodeDown) {
					t.Fatalf("call in flight ended with %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the calling loop did not end after Close")
			}
			if n := a.poller.active.Load() + b.poller.active.Load(); n != 0 {
				t.Fatalf("%d polling slots still taken after Close", n)
			}
		})
	}
}

// On oversubscribed cores (here: every poll attempt counts as having
// waited for one) a reader stops polling at its first attempt and pauses
// polling for pollBackoff, fixed window or adaptive.
func TestPollContendedBacksOff(t *testing.T) {
	skipNoRaw(t)
	for _, busy := range []time.Duration{0, 50 * time.Microsecond} {
		t.Run(fmt.Sprint("BusyPoll=", busy), func(t *testing.T) {
			checkLeaks(t)
			old := pollContended.Load()
			pollContended.Store(-1)
			t.Cleanup(func() { pollContended.Store(old) })
			a, b := pair(t, false, func(c *Config) { c.BusyPoll = busy })
			echo(t, b, "echo")
			start := time.Now()
			callUntil(t, a, b, "contended polls", func() bool {
				return a.Stats().PollContended > 0 && time.Since(start) > 4*pollBackoff
			})
			elapsed := time.Since(start)
			sa, sb := a.Stats(), b.Stats()
			// A poll's first attempt may find data that came at once (a
			// hit); one that finds nothing ends the poll as contended, so
			// no poll runs on to the end of its window (a miss).
			if sa.PollMisses+sb.PollMisses != 0 {
				t.Fatalf("polls ran their window out although every attempt was contended: %+v / %+v", sa, sb)
			}
			// Each reader polls at most once per backoff.
			if n, most := sa.PollContended+sb.PollContended, 2*(uint64(elapsed/pollBackoff)+1); n > most {
				t.Fatalf("%d contended polls in %v, want at most %d (one per reader per %v)", n, elapsed, most, pollBackoff)
			}
		})
	}
}
