package gossip

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vmihailenco/msgpack/v5"
)

// maxFileSize bounds the state file Load reads.
const maxFileSize = 64 << 20

// Load reads the state saved at Config.FlushPath: ring id, entries and
// clock. A missing file (or no FlushPath) returns (false, nil) and changes
// nothing; a file that cannot be decoded, fails validation or belongs to
// another node returns an error wrapping ErrCorrupt; other read errors are
// returned as they are. Call it before Start, which then rejoins the
// loaded ring.
func (r *Ring) Load() (loaded bool, err error) {
	if r.cfg.FlushPath == "" {
		return false, nil
	}
	r.opMu.Lock()
	defer r.opMu.Unlock()
	if r.started || r.stopped {
		return false, errors.New("gossip: Load must be called before Start")
	}
	b, err := readLimited(r.cfg.FlushPath)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("gossip: loading %s: %w", r.cfg.FlushPath, err)
	}
	f, err := decodeFile(b, r.self)
	if err != nil {
		return false, fmt.Errorf("gossip: loading %s: %w", r.cfg.FlushPath, err)
	}
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
	return true, nil
}

func readLimited(path string) ([]byte, error) {
	fh, err := os.Open(path)
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

// flushLogged is the loop's periodic flush: errors are logged.
func (r *Ring) flushLogged() {
	if err := r.flush(); err != nil {
		r.log.Warn("flushing ring state", "path", r.cfg.FlushPath, "err", err)
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
	f := fileState{Version: wireVersion, Ring: r.ringID, Self: r.self,
		Clock: r.st.clock.Clone(), Entries: r.st.sortedEntries(), Floor: r.selfFloor}
	r.dirty = false
	r.mu.Unlock()
	b, err := msgpack.Marshal(&f)
	if err == nil {
		err = writeAtomic(r.cfg.FlushPath, b)
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
// directory: write, fsync, rename, fsync the directory. A crash leaves the
// old file or the new one, never a torn one.
func writeAtomic(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(b); err != nil {
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
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
