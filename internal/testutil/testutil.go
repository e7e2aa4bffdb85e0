package testutil

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// WaitTimeout is how long WaitFor polls before it fails the test: long
// enough for a failure detector on a loaded 2-core machine under -race,
// short enough that a broken test fails well within go test's timeout.
const WaitTimeout = 15 * time.Second

// pollEvery is the pause between two checks of a condition.
const pollEvery = 5 * time.Millisecond

// WaitFor polls cond until it holds, failing t (Fatalf, naming what) if it
// does not within WaitTimeout. Call it from the test's goroutine.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitWithin(t, WaitTimeout, what, cond)
}

// WaitWithin is WaitFor with a budget of d instead of WaitTimeout.
func WaitWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := Poll(d, cond); err != nil {
		t.Fatalf("timed out waiting for %s: %v", what, err)
	}
}

// ErrTimeout is returned by Poll when the condition did not hold in time.
var ErrTimeout = errors.New("testutil: condition not met")

// Poll calls cond every few milliseconds until it holds (nil) or d has
// passed (an error wrapping ErrTimeout).
func Poll(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %v", ErrTimeout, d)
		}
		time.Sleep(pollEvery)
	}
	return nil
}

// LeakTimeout is how long CheckLeaks waits for goroutines to exit: some
// (memberlist's, after Shutdown) end a little after their owner returns.
const LeakTimeout = 10 * time.Second

// CheckLeaks fails t if, once its later cleanups have run, goroutines
// run that did not exist when CheckLeaks was called, and they do not exit
// within LeakTimeout. The report lists the stacks of those goroutines.
// Goroutines are told apart by id, not counted: a goroutine of an earlier
// test that ends while this one runs would otherwise hide a leak. Call it
// first in a test, before anything registers a cleanup that stops what it
// started (cleanups run last-in first-out, so this check runs last).
// Tests calling it must not run in parallel with others.
func CheckLeaks(t testing.TB) {
	t.Helper()
	checkLeaks(t, LeakTimeout)
}

func checkLeaks(t testing.TB, d time.Duration) {
	before := make(map[string]bool)
	for _, g := range goroutines() {
		before[g.id] = true
	}
	t.Cleanup(func() {
		var fresh []goroutine
		err := Poll(d, func() bool {
			fresh = fresh[:0]
			for _, g := range goroutines() {
				if !before[g.id] {
					fresh = append(fresh, g)
				}
			}
			return len(fresh) == 0
		})
		if err != nil {
			var b strings.Builder
			for _, g := range fresh {
				b.WriteString(g.stack)
				b.WriteString("\n\n")
			}
			t.Errorf("goroutine leak: %d goroutines started during the test still run: %v\n%s", len(fresh), err, b.String())
		}
	})
}

// goroutine is one goroutine of a stack dump: its id and its stack.
type goroutine struct {
	id, stack string
}

// goroutines lists every goroutine but the caller's.
func goroutines() []goroutine {
	var out []goroutine
	for i, block := range strings.Split(string(Stacks()), "\n\n") {
		if i == 0 { // the calling goroutine comes first
			continue
		}
		id, _, ok := strings.Cut(strings.TrimPrefix(block, "goroutine "), " ")
		if !ok || !strings.HasPrefix(block, "goroutine ") {
			continue
		}
		out = append(out, goroutine{id: id, stack: block})
	}
	return out
}

// Stacks returns every goroutine's stack (up to 1 MiB), for failure
// reports.
func Stacks() []byte {
	buf := make([]byte, 1<<20)
	return buf[:runtime.Stack(buf, true)]
}

// Logger returns a logger writing text lines to t.Output(): at debug
// level when the tests run with -v, otherwise warnings and errors only.
// Lines written once the cleanups registered after this call have run
// (by goroutines outliving the code under test) are dropped, since the
// testing package forbids output after a test ends.
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(newOutput(t), &slog.HandlerOptions{Level: level}))
}

// output is t.Output() until t's cleanups start.
type output struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func newOutput(t testing.TB) *output {
	o := &output{w: t.Output()}
	t.Cleanup(func() {
		o.mu.Lock()
		o.done = true
		o.mu.Unlock()
	})
	return o
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return len(p), nil
	}
	return o.w.Write(p)
}
