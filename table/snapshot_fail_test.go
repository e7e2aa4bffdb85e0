package table

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/notp-go/notp/internal/testutil"
)

// A snapshot write that fails once its temporary file holds the whole
// snapshot removes that file: nothing is left at DATA_PREV for the next
// Open to take for a finished snapshot. The table keeps every write, the
// PREV log awaits the retry, and the next trigger completes it.
func TestFailedSnapshotWriteRemovesItsTempFile(t *testing.T) {
	errInjected := errors.New("injected fsync failure")
	var calls atomic.Int32
	var written atomic.Int64 // bytes in the temporary file when it failed
	// Registered before openT's Close, so it runs after every table of
	// this test is closed and no compaction reads the hook any more.
	t.Cleanup(func() { testSnapshotWritten = nil })
	testSnapshotWritten = func(tmp string) error {
		if calls.Add(1) > 1 {
			return nil
		}
		st, err := os.Stat(tmp)
		if err != nil {
			return err
		}
		written.Store(st.Size())
		return errInjected
	}
	// The first compaction goes ahead and fails; the retries, which the
	// writes still to come may trigger at once, wait for the checks.
	var compactions atomic.Int32
	retry := make(chan struct{})
	testBeforeCompact = func() {
		if compactions.Add(1) > 1 {
			<-retry
		}
	}
	cfg := durableConfig(t)
	cfg.WriteThreshold, cfg.AutoSave = 4, -1
	tb := openT(t, cfg)
	testBeforeCompact = nil // copied by Open
	// Run before the table's Close, should a check fail first.
	allowRetry := sync.OnceFunc(func() { close(retry) })
	t.Cleanup(allowRetry)
	want := fill(t, tb, 4) // 9 records: a compaction starts and fails
	testutil.WaitFor(t, "a failed compaction", func() bool { return tb.Stats().CompactionErrors > 0 })
	if n := written.Load(); n <= snapHeader+snapFooter {
		t.Fatalf("the write failed with %d bytes in its temporary file, want a whole snapshot", n)
	}
	if _, err := os.Stat(cfg.path(suffixDataPrev)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary snapshot still there after the failed write: %v", err)
	}
	if _, err := os.Stat(cfg.path(suffixData)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a snapshot was installed by a failed write: %v", err)
	}
	if _, err := os.Stat(cfg.path(suffixPrev)); err != nil {
		t.Fatalf("PREV log gone after a failed compaction: %v", err)
	}
	if got := dump(t, tb); !equalMaps(got, want) {
		t.Fatalf("after the failure: %v, want %v", got, want)
	}
	allowRetry()
	fill(t, tb, 8)
	want = dump(t, tb)
	waitCompacted(t, cfg)
	if s := tb.Stats(); s.CompactionErrors != 1 {
		t.Fatalf("stats %+v: want the one injected failure", s)
	}
	tb = reopen(t, tb, cfg)
	if got := dump(t, tb); !equalMaps(got, want) {
		t.Fatalf("after reopen: %v, want %v", got, want)
	}
}

// Close during a snapshot write aborts it once the temporary file exists,
// and the abort removes that file; the next Open rebuilds every write and
// finishes the compaction.
func TestCloseAbortingSnapshotWriteRemovesItsTempFile(t *testing.T) {
	started := make(chan struct{})
	closing := make(chan (<-chan struct{}), 1)
	// The compaction waits until Close has begun, so writeSnapshot
	// creates its temporary file and then finds the abort channel closed.
	testBeforeCompact = func() {
		close(started)
		<-<-closing
	}
	cfg := durableConfig(t)
	cfg.WriteThreshold = 4
	tb := openT(t, cfg)
	testBeforeCompact = nil // copied by Open: later tables do not wait
	closing <- tb.log.done
	want := fill(t, tb, 4) // 9 records: a compaction starts
	<-started
	must(t, tb.Close())
	if _, err := os.Stat(cfg.path(suffixDataPrev)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary snapshot still there after the aborted write: %v", err)
	}
	if _, err := os.Stat(cfg.path(suffixPrev)); err != nil {
		t.Fatalf("PREV log gone after an aborted compaction: %v", err)
	}
	tb = openT(t, cfg)
	if got := dump(t, tb); !equalMaps(got, want) {
		t.Fatalf("after reopen: %v, want %v", got, want)
	}
	waitCompacted(t, cfg)
}
