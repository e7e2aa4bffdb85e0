package table

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

// loadBestSnapshot loads into s the newest snapshot that checks out: the
// snapshot, or a completely written successor not yet renamed over it. It
// returns the log generation the snapshot covers, 0 with no snapshot, and
// whether it was the successor. A
// damaged snapshot with no valid successor is ErrCorrupt: the logs it
// covered are gone, so opening without it would silently lose data.
func loadBestSnapshot(cfg *Config, s state) (uint64, bool, error) {
	data, derr := checkSnapshot(cfg.path(suffixData))
	next, nerr := checkSnapshot(cfg.path(suffixDataPrev))
	path, info := cfg.path(suffixData), data
	switch {
	case nerr == nil && (derr != nil || next.gen > data.gen):
		path, info = cfg.path(suffixDataPrev), next
	case derr == nil:
	case errors.Is(derr, os.ErrNotExist):
		return 0, false, nil
	default:
		return 0, false, derr
	}
	if err := loadSnapshot(path, info, s); err != nil {
		return 0, false, err
	}
	return info.gen, path != cfg.path(suffixData), nil
}

// replayLog applies to s the records of the log f, whose header must name
// generation gen, up to the first torn or damaged record. Operations that
// fail on replay (type errors) are skipped, as when notp replays. It
// returns the end offset of the last good record, the number of records
// and whether that end is the end of the file.
func replayLog(f *os.File, s state, gen uint64) (replayed, error) {
	st, err := f.Stat()
	if err != nil {
		return replayed{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return replayed{}, err
	}
	// A buffer of the file's size when that is smaller: opening a small
	// table need not allocate and clear 64 KiB per log.
	br := bufio.NewReaderSize(f, int(min(st.Size(), replayBufSize)))
	got, err := readLogHeader(br)
	if err != nil {
		return replayed{}, err
	}
	if got != gen {
		return replayed{}, fmt.Errorf("%w: log %s has generation %d, want %d", ErrCorrupt, f.Name(), got, gen)
	}
	rr := recordReader{r: br, limit: st.Size() - logHeader}
	var n int
	for {
		r, err := rr.next()
		if err != nil {
			return replayed{end: logHeader + rr.offset, records: n, clean: err == io.EOF, damage: err}, nil
		}
		n++
		s.apply(&r) // a type error on replay changes nothing
	}
}

// replayBufSize is the largest read buffer of a log replay.
const replayBufSize = 64 << 10

// replayed is what replayLog found.
type replayed struct {
	end     int64 // offset after the last good record
	records int
	clean   bool  // end is the end of the file
	damage  error // why the replay stopped, when not clean
}

// openLog opens the log at path with flag (os.O_RDONLY or os.O_RDWR) and
// reads the generation in its header, so that checking the generation and
// replaying take one open. A missing file is os.ErrNotExist and a missing
// or damaged header errTornHeader; on any error no file is left open.
func openLog(path string, flag int) (*os.File, uint64, error) {
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, 0, err
	}
	gen, err := readLogHeader(f)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, gen, nil
}

// recover rebuilds s from the files: the newest valid snapshot, then the
// PREV log and the live log if they are newer than it. It truncates a
// damaged tail of the live log, finishes or schedules an interrupted
// compaction, and leaves the live log open for appending.
func (d *durable) recover(s state) error {
	snapGen, successor, err := loadBestSnapshot(d.cfg, s)
	if err != nil {
		return err
	}
	// A complete successor finishes its compaction's rename: the logs it
	// covers are about to be removed, so it must become the snapshot.
	// Anything else under its name is a partial write.
	var changed bool
	if successor {
		// Durably, before any log it covers is removed below.
		err = os.Rename(d.cfg.path(suffixDataPrev), d.cfg.path(suffixData))
		if err == nil {
			err = syncDir(d.cfg.Dir)
		}
	} else {
		changed, err = removeIfExists(d.cfg.path(suffixDataPrev))
	}
	if err != nil {
		return err
	}
	last := snapGen
	prevPath := d.cfg.path(suffixPrev)
	switch f, gen, err := openLog(prevPath, os.O_RDONLY); {
	case errors.Is(err, os.ErrNotExist):
	case err == nil && gen > snapGen:
		rp, err := replayLog(f, s, gen)
		f.Close()
		if err != nil {
			return err
		}
		if !rp.clean {
			d.cfg.Logger.Warn("table PREV log damaged; replayed up to the damage", "table", d.cfg.Name,
				"offset", rp.end, "err", rp.damage)
		}
		d.prevPending, d.prevGen, last = true, gen, gen
	case err == nil || errors.Is(err, errTornHeader):
		// Covered by the snapshot (its compaction was interrupted
		// after the rename), or headerless and so without records.
		if f != nil {
			f.Close()
		}
		if err := os.Remove(prevPath); err != nil {
			return err
		}
		changed = true
	default:
		return err
	}
	c, err := d.openLatest(s, last)
	if err != nil {
		return err
	}
	if changed || c {
		return syncDir(d.cfg.Dir)
	}
	return nil
}

// openLatest replays the live log if it is newer than generation last and
// opens it for appending, truncated after its last good record; otherwise
// it starts an empty live log of generation last+1. It reports whether it
// created the file.
func (d *durable) openLatest(s state, last uint64) (bool, error) {
	path := d.cfg.path(suffixLatest)
	f, gen, err := openLog(path, os.O_RDWR)
	switch {
	case err == nil && gen > last:
	case err == nil && gen <= d.prevGen && d.prevPending:
		f.Close()
		return false, fmt.Errorf("%w: live log generation %d is not newer than the PREV log's %d", ErrCorrupt, gen, d.prevGen)
	case err == nil || errors.Is(err, errTornHeader) || errors.Is(err, os.ErrNotExist):
		// Missing, headerless (so without records) or covered by
		// the snapshot: start afresh.
		if f != nil {
			f.Close()
		}
		f, err := createLog(path, last+1)
		if err != nil {
			return false, err
		}
		d.f, d.gen = f, last+1
		return true, f.Sync()
	default:
		return false, err
	}
	rp, err := replayLog(f, s, gen)
	if err == nil && !rp.clean {
		d.cfg.Logger.Info("table log has a torn or damaged tail; truncating", "table", d.cfg.Name,
			"offset", rp.end, "err", rp.damage)
		if err = f.Truncate(rp.end); err == nil {
			err = f.Sync()
		}
	}
	if err == nil {
		_, err = f.Seek(rp.end, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return false, err
	}
	// The records already in the log count towards the next compaction.
	d.f, d.gen, d.records = f, gen, rp.records
	return false, nil
}
