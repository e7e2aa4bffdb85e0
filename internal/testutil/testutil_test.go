package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeT records what a helper reports instead of failing the real test,
// and runs its cleanups when told.
type fakeT struct {
	testing.TB
	out      bytes.Buffer
	cleanups []func()
	errs     []string
}

func (f *fakeT) Helper()           {}
func (f *fakeT) Output() io.Writer { return &f.out }
func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *fakeT) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestPollReturnsOnceTheConditionHolds(t *testing.T) {
	var calls atomic.Int32
	if err := Poll(time.Second, func() bool { return calls.Add(1) == 3 }); err != nil {
		t.Fatalf("Poll: %v", err)
	}
	if got := calls.Load(); got != 3 {
		t.Fatalf("cond called %d times, want 3", got)
	}
}

func TestPollTimesOutWithErrTimeout(t *testing.T) {
	start := time.Now()
	err := Poll(20*time.Millisecond, func() bool { return false })
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Poll = %v, want ErrTimeout", err)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatalf("Poll gave up after %v, before its deadline", time.Since(start))
	}
}

func TestWaitForPassesWhenTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	WaitFor(t, "the counter", func() bool { return n.Add(1) > 2 })
}

func TestCheckLeaksReportsAGoroutineLeftRunning(t *testing.T) {
	f := &fakeT{TB: t}
	checkLeaks(f, 50*time.Millisecond)
	stop := make(chan struct{})
	go func() { <-stop }()
	f.runCleanups()
	close(stop)
	if len(f.errs) != 1 || !strings.Contains(f.errs[0], "goroutine leak") || !strings.Contains(f.errs[0], "TestCheckLeaksReportsAGoroutineLeftRunning") {
		t.Fatalf("errors = %q, want one leak report naming the leaking test's goroutine", f.errs)
	}
}

func TestCheckLeaksSeesALeakWhileAnOlderGoroutineEnds(t *testing.T) {
	older := make(chan struct{})
	olderDone := make(chan struct{})
	go func() { <-older; close(olderDone) }()
	f := &fakeT{TB: t}
	checkLeaks(f, 50*time.Millisecond)
	stop := make(chan struct{})
	go func() { <-stop }()
	// As many goroutines end as start: a count would see no leak.
	close(older)
	<-olderDone
	f.runCleanups()
	close(stop)
	if len(f.errs) != 1 || !strings.Contains(f.errs[0], "1 goroutines started during the test") {
		t.Fatalf("errors = %q, want one leak report of one goroutine", f.errs)
	}
}

func TestCheckLeaksWaitsForGoroutinesThatExit(t *testing.T) {
	f := &fakeT{TB: t}
	checkLeaks(f, 5*time.Second)
	done := make(chan struct{})
	go func() { <-done }()
	// The goroutine ends only after the check has started polling.
	go func() { time.Sleep(20 * time.Millisecond); close(done) }()
	f.runCleanups()
	if len(f.errs) != 0 {
		t.Fatalf("errors = %q, want none: the goroutines exited", f.errs)
	}
}

func TestLoggerWritesToTheTestOutputUntilCleanup(t *testing.T) {
	f := &fakeT{TB: t}
	log := Logger(f)
	log.Warn("before cleanup", "node", "a")
	log.Debug("debug line")
	f.runCleanups()
	log.Error("after cleanup")
	out := f.out.String()
	if !strings.Contains(out, "before cleanup") || !strings.Contains(out, "node=a") {
		t.Fatalf("output %q lacks the warning", out)
	}
	if strings.Contains(out, "after cleanup") {
		t.Fatalf("output %q has a line written after cleanup", out)
	}
	if got := strings.Contains(out, "debug line"); got != testing.Verbose() {
		t.Fatalf("debug line written = %v, want %v (only with -v)", got, testing.Verbose())
	}
}

func TestIdleListenAcceptsNothingUntilClosed(t *testing.T) {
	l, err := IdleListen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		accepted <- err
	}()
	select {
	case err := <-accepted:
		t.Fatalf("Accept returned %v before Close", err)
	case <-time.After(20 * time.Millisecond):
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A SilentServer accepts, counts and holds connections without a word;
// its cleanup closes them, so the client then reads EOF.
func TestSilentServerAcceptsAndNeverAnswers(t *testing.T) {
	var c net.Conn
	t.Run("server", func(t *testing.T) {
		s := NewSilentServer(t)
		var err error
		c, err = net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		WaitFor(t, "the connection accepted", func() bool { return s.Accepted() == 1 })
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var ne net.Error
		if _, err := c.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("read from a silent server = %v, want a timeout", err)
		}
	})
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read after the server's cleanup = %v, want EOF", err)
	}
}

func TestClockMovesOnlyWhenAdvanced(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	c := NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	c.Advance(1500 * time.Millisecond)
	if got := c.Now().Sub(start); got != 1500*time.Millisecond {
		t.Fatalf("after Advance(1.5s) the clock moved %v", got)
	}
}

func TestMsgpackEncodes(t *testing.T) {
	if got := Msgpack(map[string]int{"a": 1}); !bytes.Equal(got, []byte{0x81, 0xa1, 'a', 0x01}) {
		t.Fatalf("Msgpack = %x", got)
	}
}

// SyncBuffer keeps every write of concurrent writers, readable meanwhile.
func TestSyncBufferConcurrentWrites(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprint(&b, "x")
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 400) {
		t.Fatalf("SyncBuffer holds %d bytes, want 400", len(got))
	}
}
