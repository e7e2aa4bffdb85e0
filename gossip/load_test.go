package gossip

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip/internal/codec"
	"github.com/notp-go/notp/vclock"
)

func mustMarshal(v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func validFile() []byte {
	c := vclock.New()
	c.Increment("a")
	return mustMarshal(&codec.FileState{Version: 1, Ring: "ring", Self: "a", Clock: c,
		Entries: []codec.Entry{ent("a", 1, "a", false, 3)}})
}

// Load without a path, of a missing file, a read error, invalid content (JSON
// in notp; msgpack here), a non-object, and a valid file restoring ring,
// clock and ring id.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	k := startKernel(t, "a", 0)
	t.Cleanup(func() { _ = k.Close() })
	mk := func(path string) *Ring {
		r, err := New(k, Config{FlushPath: path})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if ok, err := mk("").Load(); ok || err != nil {
		t.Fatalf("Load without path = %v, %v", ok, err)
	}
	r := mk(filepath.Join(dir, "missing"))
	before := r.View()
	if ok, err := r.Load(); ok || err != nil || r.View() != before || r.RingID() != "" {
		t.Fatalf("Load of a missing file = %v, %v", ok, err)
	}
	if _, err := mk(dir).Load(); err == nil || errors.Is(err, ErrCorrupt) { // a directory
		t.Fatalf("Load of a directory = %v, want a read error", err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, b := range map[string][]byte{
		"json":          []byte(`{"ring": "x"}`),
		"not-an-object": mustMarshal(42),
		"truncated":     validFile()[:20],
		"empty":         {},
		"other-node": mustMarshal(&codec.FileState{Version: 1, Ring: "ring", Self: "b", Clock: vclock.New(),
			Entries: []codec.Entry{ent("a", 1, "a", false, 3)}}),
		"bad-version": mustMarshal(&codec.FileState{Version: 9, Self: "a", Clock: vclock.New()}),
		"bad-entry": mustMarshal(&codec.FileState{Version: 1, Self: "a", Clock: vclock.New(),
			Entries: []codec.Entry{ent("a", 1, "a", false, MaxWeight+1)}}),
	} {
		if _, err := mk(write(name, b)).Load(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Load = %v, want ErrCorrupt", name, err)
		}
	}
	// A valid file loads.
	c := vclock.New()
	c.Increment("a")
	c.Increment("b")
	p := write("good", mustMarshal(&codec.FileState{Version: 1, Ring: "ring", Self: "a", Clock: c,
		Entries: []codec.Entry{ent("a", 1, "a", false, 3), ent("b", 2, "a", false, 5), ent("c", 3, "b", true, 0)}}))
	r = mk(p)
	if ok, err := r.Load(); !ok || err != nil {
		t.Fatalf("Load = %v, %v", ok, err)
	}
	if r.RingID() != "ring" || !slices.Equal(ringIDs(r), []string{"a", "b"}) || r.View().Weights()["b"] != 5 ||
		r.Clock().Compare(c) != vclock.Equal {
		t.Fatalf("loaded ring %v (%q), clock %v", ringIDs(r), r.RingID(), r.Clock())
	}
}

// Flushing writes msgpack through a temporary file that is fsynced and
// renamed; an unchanged state is not rewritten; a failing write is counted
// and retried.
func TestFlush(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ring.state")
	n := newNode(t, "a", func(c *Config) { c.FlushPath = p; c.FlushInterval = time.Hour; c.Interval = time.Hour })
	n.start("")
	if err := n.r.flush(); err != nil {
		t.Fatal(err)
	}
	flushes := n.r.Stats().Flushes
	if err := n.r.flush(); err != nil || n.r.Stats().Flushes != flushes {
		t.Fatalf("unchanged state rewritten: %v %d→%d", err, flushes, n.r.Stats().Flushes)
	}
	if err := n.r.Insert(ctx(t), notp.Node{ID: "b", Host: "127.0.0.1", Port: 9}, 4, false); err != nil {
		t.Fatal(err)
	}
	if err := n.r.flush(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	body, err := codec.FileBody(b)
	if err != nil {
		t.Fatal(err)
	}
	f, err := codec.DecodeFile(body, "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) != 2 || f.Entries[1].Weight != 4 {
		t.Fatalf("file entries = %v", f.Entries)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	bad := newNode(t, "c", func(c *Config) {
		c.FlushPath = filepath.Join(dir, "missing-dir", "x")
		c.FlushInterval = time.Hour
	})
	bad.start("")
	if err := bad.r.flush(); err == nil || bad.r.Stats().FlushErrors != 1 {
		t.Fatalf("flush into a missing dir = %v, errors %d", err, bad.r.Stats().FlushErrors)
	}
	if err := bad.r.flush(); err == nil { // still dirty: retried
		t.Fatal("second flush did not retry")
	}
}
