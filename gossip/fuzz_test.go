package gossip

import (
	"bytes"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip/internal/codec"
	"github.com/notp-go/notp/kernel"
	"github.com/vmihailenco/msgpack/v5"
)

// FuzzLoad runs Load's whole path on a file holding the fuzz input:
// leftover temporaries, read, trailer check, decode, validation and
// adoption. Nothing may panic; an error for unusable content wraps
// ErrCorrupt; a file that loads flushes back to a file that loads to the
// same state. The files are in memory (memFS): the operating system's
// part is not what is fuzzed, and a dozen system calls per input would
// cap the fuzzer at a few thousand executions a second.
func FuzzLoad(f *testing.F) {
	f.Add(codec.AppendTrailer(validFile()))
	f.Add(validFile()) // the trailerless layout of earlier releases
	f.Add([]byte{})
	f.Add([]byte(codec.FileMagic + "\x00\x00\x00\x00"))
	bad := codec.AppendTrailer(validFile())
	bad[0] ^= 1
	f.Add(bad) // checksum mismatch
	// The kernel is never started: Load needs only its node.
	k, err := kernel.New(kernel.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1", Port: 1}, Cookie: testCookie})
	if err != nil {
		f.Fatal(err)
	}
	const path, again = "/fuzz/state", "/fuzz/again"
	mem := &memFS{files: map[string][]byte{}}
	// Two rings, reused across executions (Load replaces the whole state,
	// and New costs more than a load): r loads the input and flushes it to
	// again, r2 loads that.
	newRing := func(p string) *Ring {
		r, err := New(k, Config{FlushPath: p})
		if err != nil {
			f.Fatal(err)
		}
		r.fs = mem
		return r
	}
	r, r2 := newRing(path), newRing(again)
	f.Fuzz(func(t *testing.T, b []byte) {
		clear(mem.files)
		mem.files[path] = b
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

// memFS is a fileSystem in memory, for one fuzz worker (not safe for
// concurrent use): files maps a path to its contents; directories are
// implied by the paths.
type memFS struct {
	files map[string][]byte
	temps int // names the temporary files
}

func (m *memFS) CreateTemp(dir, pattern string) (tempFile, error) {
	m.temps++
	name := filepath.Join(dir, strings.Replace(pattern, "*", strconv.Itoa(m.temps), 1))
	return &memTemp{fs: m, name: name}, nil
}

func (m *memFS) Rename(oldpath, newpath string) error {
	b, ok := m.files[oldpath]
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldpath, Err: fs.ErrNotExist}
	}
	delete(m.files, oldpath)
	m.files[newpath] = b
	return nil
}

func (m *memFS) Remove(name string) error {
	if _, ok := m.files[name]; !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(m.files, name)
	return nil
}

func (m *memFS) ReadDir(name string) ([]fs.DirEntry, error) {
	var des []fs.DirEntry
	for p, b := range m.files {
		if filepath.Dir(p) == name {
			des = append(des, fs.FileInfoToDirEntry(memInfo{name: filepath.Base(p), size: int64(len(b))}))
		}
	}
	return des, nil
}

func (m *memFS) Open(name string) (openFile, error) {
	b, ok := m.files[name]
	if !ok {
		for p := range m.files {
			if filepath.Dir(p) == name {
				return &memFile{info: memInfo{name: filepath.Base(name), dir: true}}, nil
			}
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	f := &memFile{info: memInfo{name: filepath.Base(name), size: int64(len(b))}}
	f.Reset(b)
	return f, nil
}

// memTemp is a file memFS.CreateTemp made: its contents appear at Close.
type memTemp struct {
	fs   *memFS
	name string
	buf  bytes.Buffer
}

func (t *memTemp) Write(b []byte) (int, error) { return t.buf.Write(b) }
func (t *memTemp) Sync() error                 { return nil }
func (t *memTemp) Name() string                { return t.name }
func (t *memTemp) Close() error {
	t.fs.files[t.name] = bytes.Clone(t.buf.Bytes())
	return nil
}

// memFile is a file or directory memFS.Open opened.
type memFile struct {
	bytes.Reader
	info memInfo
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Sync() error                { return nil }
func (f *memFile) Close() error               { return nil }

// memInfo describes a memFS file or directory.
type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o700
	}
	return 0o600
}
