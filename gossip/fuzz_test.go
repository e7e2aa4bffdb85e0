package gossip

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/kernel"
	"github.com/vmihailenco/msgpack/v5"
)

// FuzzLoad runs Load's whole path on a file holding the fuzz input: read,
// trailer check, decode, validation and adoption. Nothing may panic; an
// error for unusable content wraps ErrCorrupt; a file that loads flushes
// back to a file that loads to the same state.
func FuzzLoad(f *testing.F) {
	f.Add(encodeFileBytes(validFile()))
	f.Add(validFile()) // the trailerless layout of earlier releases
	f.Add([]byte{})
	f.Add([]byte(fileMagic + "\x00\x00\x00\x00"))
	bad := encodeFileBytes(validFile())
	bad[0] ^= 1
	f.Add(bad) // checksum mismatch
	// The kernel is never started: Load needs only its node.
	k, err := kernel.New(kernel.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1", Port: 1}, Cookie: testCookie})
	if err != nil {
		f.Fatal(err)
	}
	dir := fuzzDir(f)
	path := filepath.Join(dir, "state")
	again := filepath.Join(dir, "again")
	// Two rings, reused across executions (Load replaces the whole state,
	// and New costs more than a load): r loads the input and flushes it to
	// again, r2 loads that.
	newRing := func(p string) *Ring {
		r, err := New(k, Config{FlushPath: p})
		if err != nil {
			f.Fatal(err)
		}
		return r
	}
	r, r2 := newRing(path), newRing(again)
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		r.cfg.FlushPath = path
		ok, err := r.Load()
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Load error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if !ok {
			t.Fatal("Load of an existing file reports nothing loaded")
		}
		// Flush the loaded state to another file and load that.
		_ = os.Remove(again)
		_ = os.Remove(again + prevSuffix)
		r.cfg.FlushPath = again
		r.mu.Lock()
		r.dirty = true
		r.mu.Unlock()
		if err := r.flush(); err != nil {
			t.Fatalf("flushing a loaded state: %v", err)
		}
		if ok, err := r2.Load(); err != nil || !ok {
			t.Fatalf("reloading the flushed state = %v, %v", ok, err)
		}
		if !sameState(r, r2) {
			t.Fatalf("reloaded state differs:\n%+v\n%+v", r.st.sortedEntries(), r2.st.sortedEntries())
		}
	})
}

// sameState reports whether two rings hold the same persisted state.
func sameState(a, b *Ring) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	ca, _ := msgpack.Marshal(a.st.clock)
	cb, _ := msgpack.Marshal(b.st.clock)
	return a.ringID == b.ringID && a.selfFloor == b.selfFloor &&
		slices.Equal(a.st.sortedEntries(), b.st.sortedEntries()) && bytes.Equal(ca, cb) &&
		a.ring.Load().Equal(b.ring.Load())
}

// fuzzDir returns a temporary directory, in memory (/dev/shm) where there
// is one: each successful load flushes, and the fsyncs of a flush on a disk
// cost milliseconds, a few hundred executions per second.
func fuzzDir(f *testing.F) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "notp-fuzzload-"); err == nil {
			f.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return f.TempDir()
}
