package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp/gossip/internal/codec"
)

// maxFileSize bounds the state file Load reads. A state at its limits
// (MaxNodes entries with the longest IDs and hosts) encodes to about 7 MB.
const maxFileSize = 64 << 20

const (
	// prevSuffix names the previous good file, kept by every flush and
	// loaded (with a warning) when the latest is corrupt or missing.
	prevSuffix = ".prev"
	// tmpInfix names the temporary files of writeAtomic: path + ".tmp…".
	tmpInfix = ".tmp"
	// flushWarnEvery rate-limits flush-failure warnings (a full disk
	// fails every FlushInterval): one Warn per period, the rest at Debug.
	flushWarnEvery = time.Minute
)

// fileSystem is the file operations of persistence, a seam for tests that
// inject faults (a full disk) or keep the files in memory (the fuzz target
// of Load). osFS is the real one.
type fileSystem interface {
	CreateTemp(dir, pattern string) (tempFile, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	ReadDir(name string) ([]fs.DirEntry, error)
	Open(name string) (openFile, error)
}

// openFile is what persistence does with an opened file: read a state
// file, or fsync the directory after a rename.
type openFile interface {
	io.ReaderAt
	Stat() (fs.FileInfo, error)
	Sync() error
	Close() error
}

// tempFile is the file writeAtomic writes.
type tempFile interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

type osFS struct{}

func (osFS) CreateTemp(dir, pattern string) (tempFile, error) { return os.CreateTemp(dir, pattern) }
func (osFS) Rename(oldpath, newpath string) error             { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error                         { return os.Remove(name) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error)       { return os.ReadDir(name) }

func (osFS) Open(name string) (openFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err // not a nil *os.File in a non-nil interface
	}
	return f, nil
}

// Load reads the state saved at Config.FlushPath: ring id, entries and
// clock. Leftover temporary files of an interrupted flush are removed
// first. A missing file (or no FlushPath) returns (false, nil) and changes
// nothing. When the file is corrupt (a failed checksum, a truncation, a
// failed validation) or missing while the previous one (FlushPath +
// ".prev") is good, the previous one is loaded and a warning logged;
// otherwise a corrupt file returns an error wrapping ErrCorrupt, and other
// read errors are returned as they are. Call it before Start, which then
// rejoins the loaded ring.
func (r *Ring) Load() (loaded bool, err error) {
	path := r.cfg.FlushPath
	if path == "" {
		return false, nil
	}
	r.opMu.Lock()
	defer r.opMu.Unlock()
	switch {
	case r.stopped:
		return false, ErrClosed
	case r.started:
		return false, fmt.Errorf("%w: Load must be called before Start", ErrAlreadyStarted)
	}
	r.removeTemps(path)
	f, err := r.loadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		prev, perr := r.loadFile(path + prevSuffix)
		if perr != nil {
			return false, fmt.Errorf("gossip: loading %s: %w", path, err)
		}
		r.log.Warn("state file unusable: loaded the previous one", "path", path, "err", err)
		f, err = prev, nil
	} else if err != nil {
		prev, perr := r.loadFile(path + prevSuffix)
		if perr != nil {
			return false, nil // no state saved
		}
		r.log.Warn("state file missing: loaded the previous one", "path", path)
		f, err = prev, nil
	}
	r.adoptFile(f)
	return true, nil
}

// loadFile reads one state file, then checks its trailer's checksum and
// decodes and validates its state (codec.ReadFile).
func (r *Ring) loadFile(path string) (*codec.FileState, error) {
	b, err := r.readLimited(path)
	if err != nil {
		return nil, err
	}
	return codec.ReadFile(b, r.self)
}

// adoptFile makes a loaded file the state.
func (r *Ring) adoptFile(f *codec.FileState) {
	st := newState(r.now)
	for _, e := range f.Entries {
		st.entries[e.Node.ID] = e
	}
	st.clock.Merge(f.Clock)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st = st
	r.gen++
	r.selfFloor = f.Floor
	r.selfSync = true
	r.ringID = f.Ring
	r.loaded = true
	r.dirty = false
	if !st.live(r.self) && f.Ring != "" {
		// A file saved after this node was removed but before it noticed:
		// come back outside the ring, as the removal would have left it.
		r.ringID = ""
		r.resetLocked(r.k.Self())
	}
	r.publishRingLocked()
}

// removeTemps deletes the temporary files a crash during a flush left
// next to path.
func (r *Ring) removeTemps(path string) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	des, err := r.fs.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range des {
		if name := de.Name(); strings.HasPrefix(name, base+tmpInfix) && !de.IsDir() {
			if err := r.fs.Remove(filepath.Join(dir, name)); err == nil {
				r.log.Info("removed a leftover temporary state file", "file", name)
			}
		}
	}
}

func (r *Ring) readLimited(path string) ([]byte, error) {
	fh, err := r.fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("%w: %d bytes, max %d", ErrCorrupt, fi.Size(), maxFileSize)
	}
	b := make([]byte, fi.Size())
	if _, err := fh.ReadAt(b, 0); err != nil && fi.Size() > 0 {
		return nil, err
	}
	return b, nil
}

// flushLogged is the loop's periodic flush. Failures are logged at Warn
// once per flushWarnEvery (a full disk fails every tick), the others at
// Debug, and the recovery at Info.
func (r *Ring) flushLogged() {
	err := r.flush()
	now := r.now()
	switch {
	case err == nil && r.flushFails > 0:
		r.log.Info("flushing ring state works again", "path", r.cfg.FlushPath, "failures", r.flushFails)
		r.flushFails = 0
	case err == nil:
	case r.flushFails == 0 || now.Sub(r.flushWarned) >= flushWarnEvery:
		r.flushFails++
		r.flushWarned = now
		r.log.Warn("flushing ring state", "path", r.cfg.FlushPath, "err", err, "failures", r.flushFails)
	default:
		r.flushFails++
		r.log.Debug("flushing ring state", "path", r.cfg.FlushPath, "err", err, "failures", r.flushFails)
	}
}

// flush writes the state if it changed since the last write.
func (r *Ring) flush() error {
	if r.cfg.FlushPath == "" {
		return nil
	}
	r.mu.Lock()
	if !r.dirty {
		r.mu.Unlock()
		return nil
	}
	f := codec.FileState{Version: codec.Version, Ring: r.ringID, Self: r.self,
		Clock: r.st.clock.Clone(), Entries: r.st.sortedEntries(), Floor: r.selfFloor}
	r.dirty = false
	r.mu.Unlock()
	b, err := msgpack.Marshal(&f)
	if err == nil {
		err = r.writeAtomic(r.cfg.FlushPath, codec.AppendTrailer(b))
	}
	if err != nil {
		r.stats.flushErr.add()
		r.mu.Lock()
		r.dirty = true // try again next tick
		r.mu.Unlock()
		return fmt.Errorf("gossip: flushing %s: %w", r.cfg.FlushPath, err)
	}
	r.stats.flushes.add()
	return nil
}

// writeAtomic writes b to path through a temporary file in the same
// directory: write, fsync, keep the current file as path+".prev", rename,
// fsync the directory. A crash leaves the old file or the new one (or,
// between the two renames, only the previous one, which Load falls back
// to), never a torn one; a failed write removes its temporary file.
func (r *Ring) writeAtomic(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := r.fs.CreateTemp(dir, filepath.Base(path)+tmpInfix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = r.fs.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, bytes.NewReader(b)); err != nil {
		_ = tmp.Close()
		return err
	}
	if err = tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = r.fs.Rename(path, path+prevSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err = r.fs.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := r.fs.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
