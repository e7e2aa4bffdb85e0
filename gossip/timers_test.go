package gossip

// The loop goroutine's timers (the anti-entropy poll and the flush) on the
// fake clock of a testing/synctest bubble. A Ring started without a ring
// id runs no memberlist (whose UDP socket would keep the bubble's clock
// from moving), and its kernel opens no socket (testutil.IdleListen), so
// the poll and flush tickers are the only timers: the tests check what
// each tick does, to the tick, and take no real time. The reconnect
// backoff is timer logic too, but it runs memberlist joins; its schedule
// is tested through dueReconnects and reconnectDone on a settable clock
// (reconnect_test.go).

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/kernel"
)

// bubbleRing starts, inside a synctest bubble, a kernel without a socket
// and a Ring with cfg outside any ring; both are closed at cleanup.
func bubbleRing(t *testing.T, cfg Config) *Ring {
	t.Helper()
	k, err := kernel.New(kernel.Config{Node: notp.Node{ID: "self", Host: "127.0.0.1", Port: 1},
		Insecure: true, Listen: testutil.IdleListen, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger(t)
	}
	r, err := New(k, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// touch marks the state changed, as every write does.
func touch(r *Ring) {
	r.mu.Lock()
	r.touchLocked()
	r.mu.Unlock()
}

// A changed state is written at the next flush tick, not before, and an
// unchanged one is never rewritten.
func TestFlushTickWritesOnlyAChangedState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ring")
		r := bubbleRing(t, Config{FlushPath: path, FlushInterval: time.Second, Interval: time.Hour})
		time.Sleep(time.Second) // the first tick writes what Start changed, if anything
		synctest.Wait()
		base := r.Stats().Flushes
		touch(r)
		time.Sleep(time.Second - time.Nanosecond)
		synctest.Wait()
		if got := r.Stats().Flushes; got != base {
			t.Fatalf("%d flushes before the tick, want %d", got, base)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if got := r.Stats().Flushes; got != base+1 {
			t.Fatalf("%d flushes at the tick, want %d", got, base+1)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("no flush file after the tick: %v", err)
		}
		time.Sleep(time.Minute) // sixty ticks, nothing changed
		synctest.Wait()
		if got := r.Stats().Flushes; got != base+1 {
			t.Fatalf("%d flushes after a minute without changes, want %d", got, base+1)
		}
	})
}

// A flush that keeps failing is retried every tick, warned about once a
// minute (debug in between), and its recovery is logged at Info.
func TestFlushTickRetriesAndRateLimitsWarnings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "missing")
		logs := &logRecords{}
		r := bubbleRing(t, Config{FlushPath: filepath.Join(dir, "ring"), FlushInterval: time.Second,
			Interval: time.Hour, Logger: slog.New(logs)})
		touch(r)
		time.Sleep(150 * time.Second)
		synctest.Wait()
		const msg = "flushing ring state"
		// Ticks 1..150 fail; warnings at 1, 61 and 121 s.
		if got, want := r.Stats().FlushErrors, uint64(150); got != want {
			t.Fatalf("%d failed flushes in 150 ticks, want %d", got, want)
		}
		if warn, debug := logs.count(slog.LevelWarn, msg), logs.count(slog.LevelDebug, msg); warn != 3 || debug != 147 {
			t.Fatalf("%d warnings and %d debug lines for 150 failures, want 3 and 147", warn, debug)
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := r.Stats().Flushes; got != 1 {
			t.Fatalf("%d flushes once the directory exists, want 1", got)
		}
		if got := logs.count(slog.LevelInfo, "flushing ring state works again"); got != 1 {
			t.Fatalf("%d recovery lines, want 1", got)
		}
	})
}

// The poll tick collects a tombstone once it is older than TombstoneTTL,
// at the first tick after that and not before.
func TestPollTickCollectsTombstonesAfterTheirTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := bubbleRing(t, Config{Interval: time.Second, TombstoneTTL: 10 * time.Second, FlushInterval: time.Hour})
		gone := notp.Node{ID: "gone", Host: "127.0.0.1", Port: 9}
		r.mu.Lock()
		r.st.write("self", gone, 1, true, r.now())
		r.touchLocked()
		r.mu.Unlock()
		has := func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			_, ok := r.st.entries["gone"]
			return ok
		}
		// The tick at 10 s sees a tombstone exactly TTL old: kept.
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		if !has() || r.Stats().TombstonesGCed != 0 {
			t.Fatalf("tombstone collected before its TTL (kept %v, collected %d)", has(), r.Stats().TombstonesGCed)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if has() || r.Stats().TombstonesGCed != 1 {
			t.Fatalf("tombstone not collected at the first tick past its TTL (kept %v, collected %d)", has(), r.Stats().TombstonesGCed)
		}
	})
}
