package kernel

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/notp-go/notp/internal/testcert"
)

func TestBusyPollConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.BusyPoll = 2 * time.Second
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "BusyPoll") {
		t.Errorf("BusyPoll 2s: New error = %v, want one naming BusyPoll", err)
	}
	cfg = testConfig(t)
	cfg.MaxPollers = -1
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "MaxPollers") {
		t.Errorf("MaxPollers -1: New error = %v, want one naming MaxPollers", err)
	}
	for _, tc := range []struct {
		busy      time.Duration
		maxPoll   int
		wantFixed time.Duration
		wantMax   int32
	}{
		{0, 0, 0, int32(max(1, runtime.GOMAXPROCS(0)-1))},
		{-time.Microsecond, 3, BusyPollOff, 3},
		{BusyPollOff, 1, BusyPollOff, 1},
		{time.Second, 7, time.Second, 7},
	} {
		cfg := testConfig(t)
		cfg.BusyPoll, cfg.MaxPollers = tc.busy, tc.maxPoll
		k, err := New(cfg)
		if err != nil {
			t.Fatalf("BusyPoll %v MaxPollers %d: %v", tc.busy, tc.maxPoll, err)
		}
		if k.poller.fixed != tc.wantFixed || k.poller.max != tc.wantMax {
			t.Errorf("BusyPoll %v MaxPollers %d: poller fixed %v max %d, want %v %d",
				tc.busy, tc.maxPoll, k.poller.fixed, k.poller.max, tc.wantFixed, tc.wantMax)
		}
	}
}

// With busy polling, calls still work, and the readers find the next record
// while polling (PollHits) instead of sleeping in the poller; over TLS too.
// Close does not wait for a polling reader's budget (1 s here) to run out.
func TestBusyPollCalls(t *testing.T) {
	if !rawWriteSupported {
		t.Skip("no non-blocking reads on " + runtime.GOOS)
	}
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			checkLeaks(t)
			noContention(t)
			opt := func(c *Config) { c.BusyPoll = time.Second }
			if useTLS {
				tc := testcert.New(t).Config
				opt = func(c *Config) { c.BusyPoll, c.TLS = time.Second, tc }
			}
			a, b := pair(t, false, opt)
			echo(t, b, "echo")
			ctx := ctxT(t)
			for i := range 200 {
				want := []byte(fmt.Sprint("call ", i))
				got, err := a.Call(ctx, b.Self(), "echo", want)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("call %d = %q, %v", i, got, err)
				}
			}
			hits := a.Stats().PollHits + b.Stats().PollHits
			if hits == 0 {
				t.Fatalf("no read found data while polling: %+v / %+v", a.Stats(), b.Stats())
			}
			start := time.Now()
			a.Close()
			b.Close()
			// A reader polling for its full second would show up as a miss.
			if m := a.Stats().PollMisses + b.Stats().PollMisses; m != 0 && time.Since(start) >= time.Second {
				t.Fatalf("Close waited for %d polling readers to give up", m)
			}
		})
	}
}

// A poll that finds nothing within BusyPoll gives up (PollMisses) and the
// reader sleeps in the poller; the next message still wakes it.
func TestBusyPollGivesUp(t *testing.T) {
	if !rawWriteSupported {
		t.Skip("no non-blocking reads on " + runtime.GOOS)
	}
	checkLeaks(t)
	noContention(t)
	a, b := pair(t, false, func(c *Config) { c.BusyPoll = time.Nanosecond })
	echo(t, b, "echo")
	ctx := ctxT(t)
	for i := range 20 {
		if _, err := a.Call(ctx, b.Self(), "echo", []byte{byte(i)}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if m := a.Stats().PollMisses + b.Stats().PollMisses; m == 0 {
		t.Fatal("no poll gave up with a 1 ns budget")
	}
}

// Other protocols on a TLS port with busy polling read as usual.
func TestBusyPollLeavesOtherProtocols(t *testing.T) {
	if !rawWriteSupported {
		t.Skip("no non-blocking reads on " + runtime.GOOS)
	}
	checkLeaks(t)
	tc := testcert.New(t).Config
	opt := func(c *Config) { c.BusyPoll, c.TLS = time.Second, tc }
	a, b := startKernel(t, opt), startKernel(t, opt) // no kernel sessions
	ln, err := b.Listen('R')
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	echoOverProto(t, a, b, ln, 'R')
	if n := a.Stats().PollHits + a.Stats().PollMisses + b.Stats().PollHits + b.Stats().PollMisses; n != 0 {
		t.Fatalf("the foreign protocol's reads were busy-polled (%d polls)", n)
	}
}
