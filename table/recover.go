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

// recovery is the part of Open's recovery that needs no files: from a
// log's header it decides whether the log is replayed or discarded, and
// replays it into s up to the first torn or damaged record. Open feeds it
// the PREV log and then the live log as files, the fuzz test feeds it
// bytes: both run this same code, which never touches a file.
type recovery struct {
	s           state
	last        uint64 // generation of the newest snapshot or log applied
	prevPending bool   // the PREV log was replayed and awaits compaction
	prevGen     uint64 // its generation
}

// logFate is what recovery does with a log.
type logFate uint8

const (
	// logStale: the log is covered by what was applied before it, or
	// headerless and so without records; it is discarded.
	logStale logFate = iota
	// logReplayed: the log was newer than anything applied before it and
	// was replayed.
	logReplayed
)

// replay reads a log of size bytes from r: the PREV log, or the live log
// when live is set (after the PREV log, if there is one). A log newer
// than rc.last is replayed into rc.s, up to the first torn or damaged
// record; any other log is stale. A live log that is not newer than a
// replayed PREV log is ErrCorrupt: the live log always starts a newer
// generation than the log it replaced. Read errors other than a short
// header are returned as they are.
func (rc *recovery) replay(r io.Reader, size int64, live bool) (logFate, replayed, error) {
	gen, err := readLogHeader(r)
	switch {
	case err == nil && gen > rc.last:
	case err == nil && live && rc.prevPending:
		return logStale, replayed{}, fmt.Errorf("%w: live log generation %d is not newer than the PREV log's %d", ErrCorrupt, gen, rc.prevGen)
	case err == nil || errors.Is(err, errTornHeader):
		return logStale, replayed{}, nil
	default:
		return logStale, replayed{}, err
	}
	rp, err := replayRecords(r, size, rc.s)
	if err != nil {
		return logStale, replayed{}, err
	}
	if !live {
		rc.prevPending, rc.prevGen = true, gen
	}
	rc.last = gen
	return logReplayed, rp, nil
}

// replayRecords applies to s the records that follow the header of a log
// of size bytes, read from r, up to the first torn or damaged record.
// Operations that fail on replay (type errors) are skipped, as when notp
// replays. A read error is returned, not taken for damage: the log is
// cut only where its bytes are torn or damaged, never because a read of
// good records failed.
func replayRecords(r io.Reader, size int64, s state) (replayed, error) {
	rr := recordReader{r: r, limit: max(size-logHeader, 0)}
	var n int
	for {
		rec, err := rr.next()
		if err != nil && err != io.EOF && !errors.Is(err, errBadRecord) {
			return replayed{}, err
		}
		if err != nil {
			return replayed{end: logHeader + rr.offset, records: n, clean: err == io.EOF, damage: err}, nil
		}
		n++
		s.apply(&rec) // a type error on replay changes nothing
	}
}

// replayBufSize is the largest read buffer of a log replay.
const replayBufSize = 64 << 10

// replayed is what a replay found.
type replayed struct {
	end     int64 // offset after the last good record
	records int
	clean   bool  // end is the end of the log
	damage  error // why the replay stopped, when not clean
}

// openLog opens the log at path with flag (os.O_RDONLY or os.O_RDWR) and
// returns it with its size and a buffered reader at its start. The buffer
// is the file's size when that is smaller than replayBufSize: opening a
// small table need not allocate and clear 64 KiB per log. On any error no
// file is left open; a missing file is os.ErrNotExist.
func openLog(path string, flag int) (*os.File, *bufio.Reader, int64, error) {
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, 0, err
	}
	return f, bufio.NewReaderSize(f, int(min(st.Size(), replayBufSize))), st.Size(), nil
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
	rc := recovery{s: s, last: snapGen}
	prevPath := d.cfg.path(suffixPrev)
	switch f, br, size, err := openLog(prevPath, os.O_RDONLY); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	default:
		fate, rp, err := rc.replay(br, size, false)
		f.Close()
		switch {
		case err != nil:
			return err
		case fate == logStale:
			// Covered by the snapshot (its compaction was interrupted
			// after the rename), or headerless and so without records.
			if err := os.Remove(prevPath); err != nil {
				return err
			}
			changed = true
		case !rp.clean:
			d.cfg.Logger.Warn("table PREV log damaged; replayed up to the damage", "table", d.cfg.Name,
				"offset", rp.end, "err", rp.damage)
		}
	}
	d.prevPending, d.prevGen = rc.prevPending, rc.prevGen
	c, err := d.openLatest(&rc)
	if err != nil {
		return err
	}
	if changed || c {
		return syncDir(d.cfg.Dir)
	}
	return nil
}

// openLatest replays the live log if it is newer than everything rc
// applied and opens it for appending, truncated after its last good
// record; otherwise it starts an empty live log of the next generation.
// It reports whether it created the file.
func (d *durable) openLatest(rc *recovery) (bool, error) {
	path := d.cfg.path(suffixLatest)
	fate, rp := logStale, replayed{}
	f, br, size, err := openLog(path, os.O_RDWR)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return false, err
	default:
		fate, rp, err = rc.replay(br, size, true)
		if err != nil {
			f.Close()
			return false, err
		}
	}
	if fate == logStale {
		// Missing, headerless (so without records) or covered by the
		// snapshot: start afresh.
		if f != nil {
			f.Close()
		}
		f, err := createLog(path, rc.last+1)
		if err != nil {
			return false, err
		}
		d.f, d.gen = f, rc.last+1
		return true, f.Sync()
	}
	if !rp.clean {
		d.cfg.Logger.Info("table log has a torn or damaged tail; truncating", "table", d.cfg.Name,
			"offset", rp.end, "err", rp.damage)
		if err = f.Truncate(rp.end); err == nil {
			err = f.Sync()
		}
	}
	if err == nil {
		// The reader read ahead: append after the last good record.
		_, err = f.Seek(rp.end, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return false, err
	}
	// The records already in the log count towards the next compaction.
	d.f, d.gen, d.records = f, rc.last, rp.records
	return false, nil
}
