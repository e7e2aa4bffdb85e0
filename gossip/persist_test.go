package gossip

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip/internal/codec"
	"github.com/notp-go/notp/kernel"
)

// logRecords is a slog handler that keeps the records.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

// count returns how many records have this level and message.
func (l *logRecords) count(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.Level == level && r.Message == msg {
			n++
		}
	}
	return n
}

// flushNode is a started node outside any ring that flushes to a file in
// a temporary directory only when told to.
func flushNode(t *testing.T, logs *logRecords) *tnode {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ring.state")
	return newNode(t, "a", func(c *Config) {
		c.FlushPath, c.FlushInterval, c.Interval = p, time.Hour, time.Hour
		c.LazyConnect = true
		if logs != nil {
			c.Logger = slog.New(logs)
		}
	}).start("")
}

// loadInto loads n's flush file into a new Ring on n's kernel.
func loadInto(t *testing.T, n *tnode, logs *logRecords) (*Ring, error) {
	t.Helper()
	cfg := Config{FlushPath: n.cfg.FlushPath}
	if logs != nil {
		cfg.Logger = slog.New(logs)
	}
	r, err := New(n.k, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Load()
	return r, err
}

func insertAndFlush(t *testing.T, n *tnode, id string) {
	t.Helper()
	if err := n.r.Insert(ctx(t), notp.Node{ID: id, Host: "127.0.0.1", Port: 9}, 2, false); err != nil {
		t.Fatal(err)
	}
	if err := n.r.flush(); err != nil {
		t.Fatal(err)
	}
}

// A truncated or bit-flipped flush file fails its checksum (a flip inside
// a string still decoded before, silently loading a wrong state), and Load
// falls back to the previous good file with a warning.
func TestLoadCorruptFallsBackToPrevious(t *testing.T) {
	corruptions := map[string]func([]byte) []byte{
		"truncated by 3 bytes": func(b []byte) []byte { return b[:len(b)-3] },
		"truncated to half":    func(b []byte) []byte { return b[:len(b)/2] },
		"bit flipped in an id": func(b []byte) []byte {
			i := strings.LastIndex(string(b), "b1")
			b[i+1] ^= 0x02 // "b1" → "b3": valid msgpack, wrong state
			return b
		},
		"bit flipped in the checksum": func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b },
		"empty":                       func([]byte) []byte { return nil },
	}
	for name, corrupt := range corruptions {
		t.Run(name, func(t *testing.T) {
			n := flushNode(t, nil)
			insertAndFlush(t, n, "b0")
			insertAndFlush(t, n, "b1") // the previous file holds a, b0
			p := n.cfg.FlushPath
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, corrupt(slices.Clone(b)), 0o600); err != nil {
				t.Fatal(err)
			}
			logs := &logRecords{}
			r, err := loadInto(t, n, logs)
			if err != nil {
				t.Fatalf("Load = %v, want the previous file", err)
			}
			if got := fmt.Sprint(ringIDs(r)); got != "[a b0]" {
				t.Fatalf("loaded ring %s, want the previous one [a b0]", got)
			}
			if logs.count(slog.LevelWarn, "state file unusable: loaded the previous one") != 1 {
				t.Fatal("no warning about the fallback")
			}
			// With the previous file corrupt too, Load fails.
			if err := os.WriteFile(p+prevSuffix, corrupt(slices.Clone(b)), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := loadInto(t, n, nil); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Load with both files corrupt = %v, want ErrCorrupt", err)
			}
		})
	}
}

// A crash between keeping the previous file and renaming the new one
// leaves only the previous file, which Load uses.
func TestLoadMissingUsesPrevious(t *testing.T) {
	n := flushNode(t, nil)
	insertAndFlush(t, n, "b0")
	insertAndFlush(t, n, "b1")
	if err := os.Remove(n.cfg.FlushPath); err != nil {
		t.Fatal(err)
	}
	r, err := loadInto(t, n, nil)
	if err != nil || fmt.Sprint(ringIDs(r)) != "[a b0]" {
		t.Fatalf("Load = %v, ring %v", err, ringIDs(r))
	}
}

// Load removes the temporary files an interrupted flush left behind, and
// nothing else.
func TestLoadRemovesTempFiles(t *testing.T) {
	n := flushNode(t, nil)
	insertAndFlush(t, n, "b0")
	dir, base := filepath.Split(n.cfg.FlushPath)
	for _, name := range []string{base + ".tmp123", base + ".tmp", "other.tmp1"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := loadInto(t, n, nil); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	for i := range left {
		left[i] = filepath.Base(left[i])
	}
	if got, want := fmt.Sprint(left), fmt.Sprintf("[other.tmp1 %s]", base); got != want {
		t.Fatalf("files left %s, want %s", got, want)
	}
}

// faultFS fails every write with ENOSPC after budget bytes, as a full disk
// does.
type faultFS struct {
	osFS
	mu     sync.Mutex
	budget int
	full   bool
}

func (f *faultFS) CreateTemp(dir, pattern string) (tempFile, error) {
	tf, err := f.osFS.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &faultFile{tempFile: tf, fs: f}, nil
}

func (f *faultFS) setFull(full bool) {
	f.mu.Lock()
	f.full = full
	f.mu.Unlock()
}

type faultFile struct {
	tempFile
	fs      *faultFS
	written int
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	full, budget := f.fs.full, f.fs.budget
	f.fs.mu.Unlock()
	if full && f.written+len(p) > budget {
		n, _ := f.tempFile.Write(p[:max(0, budget-f.written)])
		f.written += n
		return n, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	n, err := f.tempFile.Write(p)
	f.written += n
	return n, err
}

// A full disk fails the flush with an error wrapping ENOSPC, leaves no
// temporary file and the last good file intact, retries on the next tick,
// and warns once per period rather than on every tick.
func TestFlushDiskFull(t *testing.T) {
	logs := &logRecords{}
	n := flushNode(t, logs)
	ffs := &faultFS{budget: 10}
	n.r.fs = ffs // before any flush on the loop: its flush tick is an hour
	insertAndFlush(t, n, "b0")
	ffs.setFull(true)
	if err := n.r.Insert(ctx(t), notp.Node{ID: "b1", Host: "127.0.0.1", Port: 9}, 2, false); err != nil {
		t.Fatal(err)
	}
	if err := n.r.flush(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("flush on a full disk = %v, want ENOSPC", err)
	}
	for range 5 {
		n.r.flushLogged()
	}
	const warn = "flushing ring state"
	if got := logs.count(slog.LevelWarn, warn); got != 1 {
		t.Fatalf("%d warnings for 5 failed flushes, want 1", got)
	}
	n.r.flushWarned = n.r.flushWarned.Add(-flushWarnEvery) // a period later
	n.r.flushLogged()
	if got := logs.count(slog.LevelWarn, warn); got != 2 {
		t.Fatalf("%d warnings a period later, want 2", got)
	}
	dir, base := filepath.Split(n.cfg.FlushPath)
	if left, _ := filepath.Glob(filepath.Join(dir, base+".tmp*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if got := n.r.Stats().FlushErrors; got != 7 {
		t.Fatalf("FlushErrors = %d, want 7", got)
	}
	r, err := loadInto(t, n, nil)
	if err != nil || fmt.Sprint(ringIDs(r)) != "[a b0]" {
		t.Fatalf("after failed flushes Load = %v, ring %v; want the last good state", err, ringIDs(r))
	}
	ffs.setFull(false)
	n.r.flushLogged()
	if logs.count(slog.LevelInfo, "flushing ring state works again") != 1 {
		t.Fatal("no notice that flushing recovered")
	}
	if r, err := loadInto(t, n, nil); err != nil || fmt.Sprint(ringIDs(r)) != "[a b0 b1]" {
		t.Fatalf("after recovery Load = %v, ring %v", err, ringIDs(r))
	}
}

// A state at its limits (MaxNodes entries with the longest IDs, writers
// and hosts, versions of 2^53) fits a kernel message and round-trips
// through the flush file.
func TestFlushLargestState(t *testing.T) {
	n := flushNode(t, nil)
	long := strings.Repeat("h", MaxHostLen)
	n.r.mu.Lock()
	for i := range MaxNodes - 1 {
		id := fmt.Sprintf("%0*d", MaxIDLen, i)
		n.r.st.entries[id] = codec.Entry{Node: notp.Node{ID: id, Host: long, Port: 9}, Weight: 1,
			Version: MaxVersion, Writer: strings.Repeat("w", MaxIDLen), Time: 1}
		n.r.st.clock.Update(id, MaxVersion)
	}
	n.r.dirty = true
	msg := codec.MustEncode(&codec.RawMessage{V: codec.Version, Type: codec.MsgUpdate, Ring: "ring",
		Clock: codec.MustEncode(n.r.st.clock), Entries: codec.MustEncode(n.r.st.sortedEntries())})
	n.r.mu.Unlock()
	if m, err := codec.DecodeMessage(msg); err != nil || len(m.Entries) != MaxNodes {
		t.Fatalf("the largest state as a message of %d bytes: %v", len(msg), err)
	}
	if err := n.r.flush(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(n.cfg.FlushPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("largest state file: %d bytes", fi.Size())
	if fi.Size() > kernel.DefaultMaxStreamSize {
		t.Fatalf("largest state is %d bytes, more than a kernel message (%d)", fi.Size(), kernel.DefaultMaxStreamSize)
	}
	r, err := loadInto(t, n, nil)
	if err != nil {
		t.Fatalf("Load of %d bytes: %v", fi.Size(), err)
	}
	if got := len(r.st.entries); got != MaxNodes {
		t.Fatalf("loaded %d entries, want %d", got, MaxNodes)
	}
}
