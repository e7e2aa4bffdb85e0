package table

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/notp-go/notp/internal/testutil"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fill writes a mix of every kind and returns the expected contents.
func fill(t testing.TB, tb *Table, n int) map[string]string {
	t.Helper()
	for i := range n {
		k := fmt.Sprintf("k%03d", i)
		switch i % 4 {
		case 0:
			must(t, tb.Set(k, []byte("v"+k)))
		case 1:
			must(t, tb.SSet(k, "a"))
			must(t, tb.SSet(k, "b"))
			must(t, tb.SDel(k, "a"))
		case 2:
			must(t, tb.HSet(k, "f", []byte("1")))
			must(t, tb.HSet(k, "g", []byte("2")))
			must(t, tb.HDel(k, "f"))
		case 3:
			must(t, tb.Set(k, []byte("gone")))
			must(t, tb.Del(k))
		}
	}
	return dump(t, tb)
}

func reopen(t testing.TB, tb *Table, cfg Config) *Table {
	t.Helper()
	must(t, tb.Close())
	return openT(t, cfg)
}

func TestReopenRestoresEveryKind(t *testing.T) {
	for _, c := range []struct {
		name      string
		threshold int
		compress  bool
	}{{"log only", -1, false}, {"snapshots", 7, false}, {"compressed snapshots", 7, true}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := durableConfig(t)
			cfg.WriteThreshold, cfg.Compress = c.threshold, c.compress
			tb := openT(t, cfg)
			want := fill(t, tb, 40)
			// Binary keys, members and values survive byte for byte.
			must(t, tb.Set("\x00\xff key", []byte{0, 1, 2}))
			must(t, tb.SSet("bin", "\x00\n"))
			want = dump(t, tb)
			tb = reopen(t, tb, cfg)
			if got := dump(t, tb); !equalMaps(got, want) {
				t.Fatalf("after reopen: %v\nwant %v", got, want)
			}
		})
	}
}

func TestOpenValidatesConfig(t *testing.T) {
	dir := t.TempDir()
	for _, cfg := range []Config{
		{Dir: dir},                    // durable tables need a name
		{Dir: dir, Name: "../escape"}, // no path separators
		{Dir: dir, Name: "a/b"},
		{Dir: dir, Name: ".hidden"}, // no dot files
		{Dir: dir, Name: "sp ace"},
		{Dir: dir, Name: strings.Repeat("n", MaxNameLen+1)},
		{Name: "bad/name"}, // checked for in-memory tables too
		{Sync: -2},
		{MaxKeyBytes: -1},
		{MaxValueBytes: 1 << 30},
		{MaxPendingBytes: -1},
		{Sync: SyncInterval(time.Microsecond)},
		{AutoSave: time.Nanosecond},
	} {
		if _, err := Open(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Open(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("rejected configs created files: %v", entries)
	}
}

func TestDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.WriteThreshold != DefaultWriteThreshold || c.AutoSave != DefaultAutoSave ||
		c.MaxKeyBytes != DefaultMaxKeyBytes || c.MaxValueBytes != DefaultMaxValueBytes ||
		c.MaxPendingBytes != DefaultMaxPendingBytes || c.Sync != SyncAlways || c.Logger == nil {
		t.Fatalf("defaults = %+v", c)
	}
	if SyncInterval(0) != SyncAlways || SyncInterval(-time.Second) != SyncAlways || SyncInterval(time.Second).String() != "every 1s" {
		t.Fatal("SyncInterval")
	}
}

// Open creates the directory and the table's files named after it.
func TestOpenCreatesNamedFiles(t *testing.T) {
	cfg := durableConfig(t)
	cfg.Dir = filepath.Join(cfg.Dir, "sub", "dir")
	openT(t, cfg)
	for _, f := range []string{"t_LATEST.LOG", "t.LOCK"} {
		if _, err := os.Stat(filepath.Join(cfg.Dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	cfg := durableConfig(t)
	tb := openT(t, cfg)
	if _, err := Open(cfg); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	must(t, tb.Close())
	openT(t, cfg) // released by Close
}

// Replaying the log on open does not append to it.
func TestReplayDoesNotRelog(t *testing.T) {
	cfg := durableConfig(t)
	cfg.WriteThreshold = -1
	tb := openT(t, cfg)
	fill(t, tb, 20)
	must(t, tb.Close())
	before := fileSize(t, cfg.path(suffixLatest))
	tb = openT(t, cfg)
	must(t, tb.Close())
	if after := fileSize(t, cfg.path(suffixLatest)); after != before {
		t.Fatalf("log grew from %d to %d bytes by reopening", before, after)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	must(t, err)
	return st.Size()
}

// A write that fails (type error) or changes nothing is not logged.
func TestFailedAndNoOpWritesAreNotLogged(t *testing.T) {
	cfg := durableConfig(t)
	tb := openT(t, cfg)
	must(t, tb.Set("k", nil))
	n := tb.Stats().Records
	if err := tb.SSet("k", "m"); !isWrongType(err) {
		t.Fatal(err)
	}
	must(t, tb.Del("absent"))
	must(t, tb.SDel("absent", "m"))
	must(t, tb.HDel("absent", "f"))
	if got := tb.Stats().Records; got != n {
		t.Fatalf("%d records logged by writes that changed nothing", got-n)
	}
	must(t, tb.Clear()) // a clear that empties the table is a write
	if got := tb.Stats().Records; got != n+1 {
		t.Fatalf("Clear logged %d records, want 1", got-n)
	}
}

// records returns the framed encodings of a sequence of writes and the
// table contents after each prefix of them.
func writeLog(t *testing.T, cfg Config, n int) (full []byte, states []map[string]string, ends []int64) {
	t.Helper()
	cfg.WriteThreshold = -1
	tb := openT(t, cfg)
	states = append(states, dump(t, tb))
	ends = append(ends, logHeader)
	for i := range n {
		k := fmt.Sprintf("k%d", i%5)
		switch i % 3 {
		case 0:
			must(t, tb.Set(k, bytes.Repeat([]byte{byte(i)}, i)))
		case 1:
			must(t, tb.Del(k))
		case 2:
			must(t, tb.HSet("h", k, []byte{byte(i)}))
		}
		states = append(states, dump(t, tb))
		ends = append(ends, int64(tb.Stats().LogBytes)+logHeader)
	}
	must(t, tb.Close())
	full, err := os.ReadFile(cfg.path(suffixLatest))
	must(t, err)
	return full, states, ends
}

// A log cut at any byte (a crash in the middle of a write) opens, holding
// every record before the cut, and the cut tail is truncated so new writes
// follow the last good record.
func TestTornTailIsTruncated(t *testing.T) {
	cfg := durableConfig(t)
	full, states, ends := writeLog(t, cfg, 12)
	for cut := int64(0); cut <= int64(len(full)); cut++ {
		must(t, os.WriteFile(cfg.path(suffixLatest), full[:cut], 0o600))
		tb, err := Open(cfg)
		if err != nil {
			t.Fatalf("cut at %d: Open: %v", cut, err)
		}
		i := 0
		for i+1 < len(ends) && ends[i+1] <= cut {
			i++
		}
		if got := dump(t, tb); !equalMaps(got, states[i]) {
			t.Fatalf("cut at %d: %v, want the %d-record state %v", cut, got, i, states[i])
		}
		must(t, tb.Set("after", []byte("cut")))
		tb = reopen(t, tb, cfg)
		if v, err := tb.Get("after"); err != nil || string(v) != "cut" {
			t.Fatalf("cut at %d: a write after the truncation was lost: %q %v", cut, v, err)
		}
		must(t, tb.Close())
	}
}

// A damaged record (bad checksum, bad length, bad body) ends the replay
// there; the records before it are kept.
func TestCorruptRecordEndsReplay(t *testing.T) {
	cfg := durableConfig(t)
	full, states, ends := writeLog(t, cfg, 6)
	for rec := 0; rec+1 < len(ends); rec++ {
		for _, off := range []int64{0, 3, 4, 8, 9} { // length, checksum, opcode
			at := ends[rec] + off
			if at >= ends[rec+1] {
				continue
			}
			bad := bytes.Clone(full)
			bad[at] ^= 0x5a
			must(t, os.WriteFile(cfg.path(suffixLatest), bad, 0o600))
			tb, err := Open(cfg)
			if err != nil {
				t.Fatalf("record %d byte %d damaged: Open: %v", rec, off, err)
			}
			if got := dump(t, tb); !equalMaps(got, states[rec]) {
				t.Fatalf("record %d byte %d damaged: %v, want %v", rec, off, got, states[rec])
			}
			must(t, tb.Close())
			if size := fileSize(t, cfg.path(suffixLatest)); size != ends[rec] {
				t.Fatalf("record %d damaged: log is %d bytes, want truncated to %d", rec, size, ends[rec])
			}
		}
	}
}

// A record whose length field claims gigabytes is rejected against the
// file's size before anything is allocated.
func TestHugeDeclaredLengthAllocatesNothing(t *testing.T) {
	cfg := durableConfig(t)
	log := appendLogHeader(nil, 1)
	log = binary.LittleEndian.AppendUint32(log, 0xffff_fff0)
	log = append(log, make([]byte, 64)...)
	must(t, os.WriteFile(cfg.path(suffixLatest), log, 0o600))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tb := openT(t, cfg)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Fatalf("Open allocated %d bytes for a lying length", grew)
	}
	if tb.Len() != 0 || fileSize(t, cfg.path(suffixLatest)) != logHeader {
		t.Fatal("the lying record was not truncated")
	}
}

// A headerless live log (a crash right after it was created) is replaced,
// as is one whose generation could never have been written (zero, or so
// large that counting on would wrap).
func TestTornLogHeaderStartsAfresh(t *testing.T) {
	var headers [][]byte
	for cut := 0; cut < logHeader; cut++ {
		headers = append(headers, appendLogHeader(nil, 1)[:cut])
	}
	headers = append(headers, appendLogHeader(nil, 0), appendLogHeader(nil, maxGen+1))
	for cut, h := range headers {
		cfg := durableConfig(t)
		must(t, os.MkdirAll(cfg.Dir, 0o700))
		must(t, os.WriteFile(cfg.path(suffixLatest), h, 0o600))
		tb := openT(t, cfg)
		must(t, tb.Set("k", nil))
		tb = reopen(t, tb, cfg)
		if tb.Len() != 1 {
			t.Fatalf("cut %d: Len = %d after reopen", cut, tb.Len())
		}
	}
}

// waitCompacted waits until no compaction is pending: the snapshot exists
// and the PREV log is gone.
func waitCompacted(t testing.TB, cfg Config) {
	t.Helper()
	testutil.WaitFor(t, "compaction", func() bool {
		_, derr := os.Stat(cfg.path(suffixData))
		_, perr := os.Stat(cfg.path(suffixPrev))
		return derr == nil && errors.Is(perr, os.ErrNotExist)
	})
}

func TestWriteThresholdCompacts(t *testing.T) {
	cfg := durableConfig(t)
	cfg.WriteThreshold = 10
	tb := openT(t, cfg)
	want := fill(t, tb, 8) // 19 records
	waitCompacted(t, cfg)
	info, err := checkSnapshot(cfg.path(suffixData))
	must(t, err)
	// The snapshot holds one record per scalar, member and field of the
	// state it covers; that state had at least the first 10 records.
	if info.count == 0 || info.gen != 1 {
		t.Fatalf("snapshot = %+v, want generation 1 with records", info)
	}
	tb = reopen(t, tb, cfg)
	if got := dump(t, tb); !equalMaps(got, want) {
		t.Fatalf("after compaction and reopen: %v, want %v", got, want)
	}
	if s := tb.Stats(); s.Records != 0 {
		t.Fatalf("fresh table stats %+v", s)
	}
}

func TestSnapshotHasOneRecordPerScalarMemberAndField(t *testing.T) {
	cfg := durableConfig(t)
	cfg.WriteThreshold = 1
	tb := openT(t, cfg)
	must(t, tb.Set("s", nil))
	waitCompacted(t, cfg)
	must(t, tb.Close())
	s := state{}
	s.apply(&record{op: opSet, key: "a", val: []byte("1")})
	s.apply(&record{op: opSSet, key: "b", sub: "x"})
	s.apply(&record{op: opSSet, key: "b", sub: "y"})
	s.apply(&record{op: opHSet, key: "c", sub: "f", val: nil})
	must(t, writeSnapshot(&cfg, s, 9, nil))
	info, err := checkSnapshot(cfg.path(suffixData))
	must(t, err)
	if info.count != 4 || info.gen != 9 {
		t.Fatalf("snapshot info %+v, want 4 records covering generation 9", info)
	}
}

func TestCompressedSnapshotIsGzip(t *testing.T) {
	cfg := durableConfig(t)
	cfg.WriteThreshold, cfg.Compress = 5, true
	tb := openT(t, cfg)
	want := fill(t, tb, 12)
	waitCompacted(t, cfg)
	must(t, tb.Close())
	raw, err := os.ReadFile(cfg.path(suffixData))
	must(t, err)
	if raw[8] != flagCompress || raw[snapHeader] != 0x1f || raw[snapHeader+1] != 0x8b {
		t.Fatalf("snapshot body is not gzip: % x", raw[:12])
	}
	// The flag travels with the file: a table opened without Compress
	// still reads it.
	cfg.Compress = false
	tb = openT(t, cfg)
	if got := dump(t, tb); !equalMaps(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
}

// AutoSave compacts after a quiet period, and only when the log holds
// something: an idle table writes no snapshots.
func TestAutoSaveCompactsOnlyWhenChanged(t *testing.T) {
	cfg := durableConfig(t)
	cfg.WriteThreshold, cfg.AutoSave = -1, 20*time.Millisecond
	tb := openT(t, cfg)
	fill(t, tb, 4)
	waitCompacted(t, cfg)
	first, err := os.Stat(cfg.path(suffixData))
	must(t, err)
	// Several AutoSave periods with no writes: no new snapshot. The
	// committer's idle timer is not re-armed without a write, so no
	// compaction can start; the wait is for showing that, not for
	// synchronisation.
	time.Sleep(10 * cfg.AutoSave)
	again, err := os.Stat(cfg.path(suffixData))
	must(t, err)
	if !os.SameFile(first, again) || tb.Stats().Compactions != 1 {
		t.Fatalf("an idle table was compacted again (%d compactions)", tb.Stats().Compactions)
	}
	must(t, tb.Set("new", nil))
	testutil.WaitFor(t, "a second compaction", func() bool { return tb.Stats().Compactions == 2 })
}

// A failed compaction keeps every write, leaves the PREV log for a
// retry, is counted, and the next trigger completes it.
func TestCompactionFailureKeepsDataAndRetries(t *testing.T) {
	cfg := durableConfig(t)
	cfg.WriteThreshold = 4
	tb := openT(t, cfg)
	// A directory where the snapshot is written makes the write fail.
	must(t, os.MkdirAll(cfg.path(suffixDataPrev), 0o700))
	want := fill(t, tb, 4) // 9 records
	testutil.WaitFor(t, "a failed compaction", func() bool { return tb.Stats().CompactionErrors > 0 })
	if _, err := os.Stat(cfg.path(suffixPrev)); err != nil {
		t.Fatalf("PREV log gone after a failed compaction: %v", err)
	}
	must(t, os.Remove(cfg.path(suffixDataPrev)))
	fill(t, tb, 8)
	want = dump(t, tb)
	waitCompacted(t, cfg)
	tb = reopen(t, tb, cfg)
	if got := dump(t, tb); !equalMaps(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
}

// copyDir copies the table files of src into a new directory.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	must(t, err)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600))
	}
	return dst
}

// stuckCompaction leaves a table whose compaction failed: a snapshot of
// generation 1, a PREV log of generation 2 and a live log of generation 3.
func stuckCompaction(t *testing.T) (Config, map[string]string) {
	cfg := durableConfig(t)
	cfg.WriteThreshold = 4
	tb := openT(t, cfg)
	fill(t, tb, 2) // 4 records: the first compaction succeeds
	waitCompacted(t, cfg)
	must(t, os.MkdirAll(cfg.path(suffixDataPrev), 0o700))
	fill(t, tb, 3)
	testutil.WaitFor(t, "a failed compaction", func() bool { return tb.Stats().CompactionErrors > 0 })
	must(t, tb.Set("live", []byte("log")))
	want := dump(t, tb)
	must(t, tb.Close())
	must(t, os.Remove(cfg.path(suffixDataPrev)))
	return cfg, want
}

// A partly written DATA_PREV (a crash during a compaction) fails its
// footer check and is ignored: the old snapshot and the logs rebuild the
// table, and the interrupted compaction is finished.
func TestPartialSnapshotIsIgnored(t *testing.T) {
	cfg, want := stuckCompaction(t)
	snap, err := os.ReadFile(cfg.path(suffixData))
	must(t, err)
	for _, cut := range []int{0, 5, len(snap) / 2, len(snap) - 1} {
		c := cfg
		c.Dir = copyDir(t, cfg.Dir)
		must(t, os.WriteFile(c.path(suffixDataPrev), snap[:cut], 0o600))
		tb := openT(t, c)
		if got := dump(t, tb); !equalMaps(got, want) {
			t.Fatalf("cut %d: %v, want %v", cut, got, want)
		}
		waitCompacted(t, c)
	}
}

// A complete DATA_PREV (a crash between its fsync and its rename) is the
// newest snapshot: Open uses it even when the old one is damaged, and
// does not replay the PREV log it already covers.
func TestCompleteUnrenamedSnapshotIsUsed(t *testing.T) {
	cfg, want := stuckCompaction(t)
	done := cfg
	done.Dir = copyDir(t, cfg.Dir)
	tb := openT(t, done) // finishes the compaction: snapshot of generation 2
	waitCompacted(t, done)
	must(t, tb.Close())
	newer, err := os.ReadFile(done.path(suffixData))
	must(t, err)
	must(t, os.WriteFile(cfg.path(suffixDataPrev), newer, 0o600))
	damageFile(t, cfg.path(suffixData), snapHeader)
	tb = openT(t, cfg)
	if got := dump(t, tb); !equalMaps(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
	if _, err := os.Stat(cfg.path(suffixPrev)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the covered PREV log was kept: %v", err)
	}
	// The successor became the snapshot: with the PREV log gone, it is
	// the only copy of that log's writes.
	tb = reopen(t, tb, cfg)
	if got := dump(t, tb); !equalMaps(got, want) {
		t.Fatalf("second reopen: %v, want %v", got, want)
	}
}

func damageFile(t testing.TB, path string, at int) {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	b[at] ^= 0xff
	must(t, os.WriteFile(path, b, 0o600))
}

// A damaged snapshot with nothing newer is an error, not an empty table:
// the logs it replaced are gone.
func TestDamagedSnapshotFailsOpen(t *testing.T) {
	cfg := durableConfig(t)
	cfg.WriteThreshold = 3
	tb := openT(t, cfg)
	fill(t, tb, 3)
	waitCompacted(t, cfg)
	must(t, tb.Close())
	size := int(fileSize(t, cfg.path(suffixData)))
	for _, at := range []int{0, 8, snapHeader, size - snapFooter, size - 10, size - 1} {
		c := cfg
		c.Dir = copyDir(t, cfg.Dir)
		damageFile(t, c.path(suffixData), at)
		if _, err := Open(c); !errors.Is(err, ErrCorrupt) {
			t.Errorf("snapshot damaged at byte %d of %d: Open = %v, want ErrCorrupt", at, size, err)
		}
	}
}

// A snapshot or log that cannot be read fails Open with an error naming
// it, rather than opening without its contents.
func TestUnreadableFilesFailOpen(t *testing.T) {
	for _, suffix := range []string{suffixData, suffixPrev, suffixLatest} {
		cfg := durableConfig(t)
		must(t, os.MkdirAll(filepath.Join(cfg.path(suffix), "x"), 0o700))
		if _, err := Open(cfg); err == nil || !strings.Contains(err.Error(), suffix) {
			t.Errorf("%s unreadable: Open = %v, want an error naming it", suffix, err)
		}
	}
}

// Writers racing with many compactions lose nothing.
func TestWritesDuringCompactionsSurvive(t *testing.T) {
	cfg := durableConfig(t)
	cfg.WriteThreshold = 25
	tb := openT(t, cfg)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				k := fmt.Sprintf("w%d-%d", w, i%30)
				if err := tb.HSet(k, "i", []byte(fmt.Sprint(i))); err != nil {
					t.Error(err)
					return
				}
				if i%7 == 0 {
					if err := tb.Del(fmt.Sprintf("w%d-%d", w, (i+3)%30)); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	want := dump(t, tb)
	if tb.Stats().Compactions == 0 {
		testutil.WaitFor(t, "a compaction", func() bool { return tb.Stats().Compactions > 0 })
	}
	tb = reopen(t, tb, cfg)
	if got := dump(t, tb); !equalMaps(got, want) {
		t.Fatalf("lost writes across compactions: %d keys, want %d", len(got), len(want))
	}
}

// Close during a compaction abandons it; the next Open resumes it.
func TestCloseDuringCompaction(t *testing.T) {
	cfg := durableConfig(t)
	cfg.WriteThreshold = 2000
	tb := openT(t, cfg)
	for i := range 2000 {
		must(t, tb.Set(fmt.Sprint(i), make([]byte, 100)))
	}
	want := dump(t, tb)
	must(t, tb.Close())
	tb = openT(t, cfg)
	if got := dump(t, tb); !equalMaps(got, want) {
		t.Fatalf("lost data: %d keys, want %d", len(got), len(want))
	}
	waitCompacted(t, cfg)
}

// Group commit: concurrent SyncAlways writers share fsyncs.
func TestSyncAlwaysSharesFsyncs(t *testing.T) {
	cfg := durableConfig(t)
	tb := openT(t, cfg)
	const writers, each = 32, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := tb.Set(fmt.Sprintf("%d/%d", w, i), nil); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	s := tb.Stats()
	if s.Records != writers*each || s.Syncs >= s.Records {
		t.Fatalf("stats %+v: want fewer fsyncs than the %d records", s, writers*each)
	}
	t.Logf("%d records in %d fsyncs", s.Records, s.Syncs)
}

// Under SyncInterval a write returns before any fsync, and the log is
// written out and fsynced by the ticker without Close.
func TestSyncIntervalWritesOutWithoutClose(t *testing.T) {
	cfg := durableConfig(t)
	cfg.Sync = SyncInterval(10 * time.Millisecond)
	tb := openT(t, cfg)
	must(t, tb.Set("k", []byte("v")))
	testutil.WaitFor(t, "the ticker's fsync", func() bool { return tb.Stats().Syncs > 0 })
	if fileSize(t, cfg.path(suffixLatest)) <= logHeader {
		t.Fatal("record not written to the log")
	}
}

// Under SyncNever writes wait only when MaxPendingBytes are queued; Close
// writes out and fsyncs the rest.
func TestSyncNeverFlushesOnClose(t *testing.T) {
	cfg := durableConfig(t)
	cfg.Sync, cfg.MaxPendingBytes = SyncNever, 512
	tb := openT(t, cfg)
	for i := range 200 {
		must(t, tb.Set(fmt.Sprint(i), make([]byte, 32)))
	}
	if tb.Stats().Syncs != 0 {
		t.Fatalf("SyncNever fsynced on its own: %+v", tb.Stats())
	}
	tb = reopen(t, tb, cfg)
	if tb.Len() != 200 {
		t.Fatalf("Len = %d after Close and reopen, want 200", tb.Len())
	}
}

// A disk error is sticky: later writes fail with it, reads still work,
// Close reports it, and reopening rebuilds from the disk.
func TestDiskErrorIsSticky(t *testing.T) {
	cfg := durableConfig(t)
	tb := openT(t, cfg)
	must(t, tb.Set("before", nil))
	tb.log.f.Close() // the disk goes away under the committer
	err1 := tb.Set("lost", nil)
	if err1 == nil {
		t.Fatal("a write to a closed log succeeded")
	}
	if err2 := tb.Set("later", nil); !errors.Is(err2, os.ErrClosed) {
		t.Fatalf("later write: %v, want the sticky error", err2)
	}
	if _, err := tb.Get("before"); err != nil {
		t.Fatalf("reads stopped after a disk error: %v", err)
	}
	if err := tb.Close(); err == nil {
		t.Fatal("Close hid the disk error")
	}
	tb = openT(t, cfg)
	if _, err := tb.Get("lost"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reopen: unlogged write present: %v", err)
	}
}

// Writers wait for the log swap of a compaction, never for the
// compaction itself: with a compaction held up before it reads a byte,
// SyncAlways writes go on and are durable.
func TestWritersDoNotWaitForCompaction(t *testing.T) {
	hold, held := make(chan struct{}), make(chan struct{}, 1)
	testBeforeCompact = func() {
		select {
		case held <- struct{}{}:
		default:
		}
		<-hold
	}
	defer func() { testBeforeCompact = nil }()
	cfg := durableConfig(t)
	cfg.WriteThreshold = 10
	tb := openT(t, cfg)
	fill(t, tb, 6) // 13 records: the first compaction starts
	<-held
	if tb.Idle() {
		t.Fatal("Idle during a compaction")
	}
	for i := range 50 {
		must(t, tb.Set(fmt.Sprint("during-", i), []byte("x")))
	}
	if s := tb.Stats(); s.Compactions != 0 {
		t.Fatalf("compaction finished while held: %+v", s)
	}
	want := dump(t, tb)
	close(hold)
	waitCompacted(t, cfg)
	testutil.WaitFor(t, "Idle after the compaction", tb.Idle)
	tb = reopen(t, tb, cfg)
	if got := dump(t, tb); !equalMaps(got, want) {
		t.Fatalf("%d keys after reopen, want %d", len(got), len(want))
	}
}
