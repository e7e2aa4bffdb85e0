package table

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// durable is a table's disk side: the live log, the goroutine that keeps
// time for it (the committer) and the compactions it starts.
//
// Writers append encoded records to pend under the table's mutex, in the
// order they change the memory. A writer that must wait for its record
// (every writer under SyncAlways) then waits for whichever comes first:
// its batch being done, or the flush token (flushTok, a one-slot channel
// used as a lock that a waiter can give up on). With the token and its
// batch not yet done, it becomes the leader and takes pend as a whole
// (swapping in a spare buffer), writes it with one write and, under
// SyncAlways, one fsync, releasing every writer of that batch at once.
// Writers that arrive during an fsync wait for the token and the next
// leader carries them all: one fsync per group (group commit), and a lone
// writer never waits for a hand-off to another goroutine. Under
// SyncInterval and SyncNever writers only wake the committer, which
// writes pend out.
//
// Compaction: when the live log reaches WriteThreshold records (or after
// AutoSave without writes) the committer renames it to the PREV log and
// starts a new live log of the next generation, holding the token. That swap
// is all writers ever wait for. A background goroutine then rebuilds the
// table as of the end of the PREV log from the files alone (the current
// snapshot plus the PREV log) and writes it as the new snapshot, covering
// PREV's generation, after which the PREV log is removed.
type durable struct {
	cfg  *Config
	mu   *sync.RWMutex // the table's; guards pend, pendN and batch
	fail func(error)

	pend  []byte
	pendN int
	batch *batch

	// Guarded by flushTok, taken before (never inside) the table's mutex.
	flushTok    chan struct{}
	f           *os.File // the live log
	lastFlush   time.Time
	gen         uint64 // its generation
	records     int    // records in it
	spare       []byte
	dirty       bool   // written since the last fsync
	err         error  // first disk error; the committer stops writing
	prevPending bool   // a PREV log awaits compaction
	prevGen     uint64 // its generation
	compacting  bool
	busy        atomic.Bool // compacting, for Idle (read without flushTok)

	stats stats

	beforeCompact func() // testBeforeCompact when the table was opened

	kickc     chan struct{}
	done      chan struct{}
	compacted chan error
	wg        sync.WaitGroup
	lock      *os.File
	closeErr  error
}

// testBeforeCompact, when set by a test before Open, runs at the start of
// each compaction goroutine of the tables then opened.
var testBeforeCompact func()

// batch is the group of records one write (and fsync) makes durable.
type batch struct {
	done chan struct{}
	err  error
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// openDurable takes the table's lock, recovers s from the files in
// cfg.Dir and starts the committer.
func openDurable(cfg *Config, s state, mu *sync.RWMutex, fail func(error)) (*durable, error) {
	if err := makeDir(cfg.Dir); err != nil {
		return nil, fmt.Errorf("table: creating %s: %w", cfg.Dir, err)
	}
	lock, err := lockFile(cfg.path(suffixLock))
	if err != nil {
		return nil, err
	}
	d := &durable{
		cfg: cfg, mu: mu, fail: fail, batch: newBatch(), lock: lock, beforeCompact: testBeforeCompact,
		flushTok: make(chan struct{}, 1), kickc: make(chan struct{}, 1), done: make(chan struct{}), compacted: make(chan error, 1),
	}
	if err := d.recover(s); err != nil {
		if d.f != nil {
			d.f.Close()
		}
		lock.Close()
		return nil, fmt.Errorf("table %s: opening: %w", cfg.Name, err)
	}
	d.wg.Add(1)
	go d.run()
	return d, nil
}

// append queues r's record; t.mu is held. It returns the batch that will
// carry it and whether the writer must wait for that batch: always under
// SyncAlways, and under the other policies when MaxPendingBytes is
// reached.
func (d *durable) append(r *record) (*batch, bool) {
	d.pend = appendRecord(d.pend, r)
	d.pendN++
	d.stats.records.Add(1)
	if d.cfg.Sync == SyncAlways {
		return d.batch, true
	}
	if len(d.pend) >= d.cfg.MaxPendingBytes {
		d.stats.pendingWaits.Add(1)
		return d.batch, true
	}
	return d.batch, false
}

// commit waits until b is on disk (or written out, under SyncInterval
// and SyncNever), writing it as the leader of its group if no one else
// has, and returns its error.
func (d *durable) commit(b *batch) error {
	select {
	case <-b.done:
		return b.err
	case d.flushTok <- struct{}{}:
	}
	select {
	case <-b.done:
	default:
		d.flush()
	}
	compact := d.cfg.WriteThreshold > 0 && d.records >= d.cfg.WriteThreshold && !d.compacting
	<-d.flushTok
	if compact {
		d.kick()
	}
	return b.err
}

// kick wakes the committer.
func (d *durable) kick() {
	select {
	case d.kickc <- struct{}{}:
	default:
	}
}

// run is the committer: it writes out records under SyncInterval and
// SyncNever, fsyncs on the SyncInterval tick, starts compactions and
// finishes the log at Close.
func (d *durable) run() {
	defer d.wg.Done()
	var tick <-chan time.Time
	if d.cfg.Sync > 0 {
		tk := time.NewTicker(time.Duration(d.cfg.Sync))
		defer tk.Stop()
		tick = tk.C
	}
	var idle <-chan time.Time
	if d.cfg.AutoSave > 0 {
		tk := time.NewTicker(d.cfg.AutoSave)
		defer tk.Stop()
		idle = tk.C
	}
	d.locked(func() {
		if d.prevPending {
			d.compact()
		}
	})
	for {
		select {
		case <-d.kickc:
			d.locked(func() {
				d.flush()
				if d.cfg.WriteThreshold > 0 && d.records >= d.cfg.WriteThreshold {
					d.compact()
				}
			})
		case <-tick:
			d.locked(d.sync)
		case now := <-idle:
			d.locked(func() {
				if now.Sub(d.lastFlush) >= d.cfg.AutoSave {
					d.compact()
				}
			})
		case err := <-d.compacted:
			d.locked(func() { d.compactionDone(err) })
		case <-d.done:
			d.locked(func() {
				d.flush()
				d.closeErr = d.finish()
			})
			return
		}
	}
}

// locked runs fn holding the flush token.
func (d *durable) locked(fn func()) {
	d.flushTok <- struct{}{}
	defer func() { <-d.flushTok }()
	fn()
}

func (d *durable) compactionDone(err error) {
	d.compacting = false
	// Published once the next compaction, if any, has started, so Idle
	// never reports true between two chained compactions.
	defer func() { d.busy.Store(d.compacting) }()
	d.stats.compactions.Add(1)
	if err != nil {
		d.stats.compactionErrors.Add(1)
		d.cfg.Logger.Warn("table compaction failed; retrying at the next trigger", "table", d.cfg.Name, "err", err)
		return
	}
	d.prevPending = false
	if d.cfg.WriteThreshold > 0 && d.records >= d.cfg.WriteThreshold {
		d.compact()
	}
}

// flush writes the pending records as one batch; the token is held.
func (d *durable) flush() {
	d.mu.Lock()
	if d.pendN == 0 {
		d.mu.Unlock()
		return
	}
	buf, n, b := d.pend, d.pendN, d.batch
	d.pend, d.pendN, d.batch = d.spare[:0], 0, newBatch()
	d.mu.Unlock()

	err := d.err
	if err == nil {
		_, err = d.f.Write(buf)
		d.stats.batches.Add(1)
		d.stats.logBytes.Add(uint64(len(buf)))
		if err == nil && d.cfg.Sync == SyncAlways {
			err = d.f.Sync()
			d.stats.syncs.Add(1)
		}
		if err != nil {
			d.setErr(fmt.Errorf("table %s: writing the log: %w", d.cfg.Name, err))
			err = d.err
		}
	}
	d.dirty = d.dirty || d.cfg.Sync != SyncAlways
	b.err = err
	close(b.done)
	d.records += n
	d.lastFlush = time.Now()
	if cap(buf) <= 1<<20 {
		d.spare = buf
	}
}

// sync fsyncs the live log if it was written since the last fsync.
func (d *durable) sync() {
	if !d.dirty || d.err != nil {
		return
	}
	d.stats.syncs.Add(1)
	if err := d.f.Sync(); err != nil {
		d.setErr(fmt.Errorf("table %s: syncing the log: %w", d.cfg.Name, err))
	}
	d.dirty = false
}

// setErr records the first disk error and makes the table refuse writes.
func (d *durable) setErr(err error) {
	if d.err == nil {
		d.err = err
		d.fail(err)
		d.cfg.Logger.Error("table disk failure; writes are refused until reopened", "table", d.cfg.Name, "err", err)
	}
}

// compact rotates the live log (unless an earlier PREV log still awaits
// compaction) and starts compacting the PREV log in the background; the
// token is held.
func (d *durable) compact() {
	if d.compacting || d.err != nil {
		return
	}
	if !d.prevPending {
		if d.records == 0 {
			return
		}
		if err := d.rotate(); err != nil {
			d.setErr(fmt.Errorf("table %s: rotating the log: %w", d.cfg.Name, err))
			return
		}
	}
	d.compacting = true
	d.busy.Store(true)
	d.wg.Add(1)
	go func(gen uint64) {
		defer d.wg.Done()
		if d.beforeCompact != nil {
			d.beforeCompact()
		}
		d.compacted <- compactPrev(d.cfg, gen, d.done)
	}(d.prevGen)
}

// rotate makes the live log the PREV log and starts a new live log. The
// old log is fsynced first, so a PREV log is always complete on disk.
func (d *durable) rotate() error {
	if err := d.f.Sync(); err != nil {
		return err
	}
	if err := d.f.Close(); err != nil {
		return err
	}
	d.f = nil
	if err := os.Rename(d.cfg.path(suffixLatest), d.cfg.path(suffixPrev)); err != nil {
		return err
	}
	f, err := createLog(d.cfg.path(suffixLatest), d.gen+1)
	if err != nil {
		return err
	}
	d.f = f
	d.prevGen, d.prevPending = d.gen, true
	d.gen++
	d.records, d.dirty = 0, true
	return syncDir(d.cfg.Dir)
}

// compactPrev writes the snapshot covering the PREV log of generation gen
// and removes that log.
func compactPrev(cfg *Config, gen uint64, abort <-chan struct{}) error {
	s := state{}
	snapGen, _, err := loadBestSnapshot(cfg, s)
	if err != nil {
		return err
	}
	if snapGen < gen {
		f, br, size, err := openLog(cfg.path(suffixPrev), os.O_RDONLY)
		if err != nil {
			return err
		}
		got, err := readLogHeader(br)
		if err == nil && got != gen {
			err = fmt.Errorf("%w: log %s has generation %d, want %d", ErrCorrupt, f.Name(), got, gen)
		}
		if err == nil {
			_, err = replayRecords(br, size, s)
		}
		f.Close()
		if err != nil {
			return err
		}
		if err := writeSnapshot(cfg, s, gen, abort); err != nil {
			return err
		}
	}
	if err := os.Remove(cfg.path(suffixPrev)); err != nil {
		return err
	}
	return syncDir(cfg.Dir)
}

// finish ends the committer: the log is fsynced whatever the policy,
// then closed.
func (d *durable) finish() error {
	err := d.err
	if d.f != nil {
		if err == nil {
			if serr := d.f.Sync(); serr != nil {
				err = fmt.Errorf("table %s: syncing the log: %w", d.cfg.Name, serr)
			}
		}
		if cerr := d.f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("table %s: closing the log: %w", d.cfg.Name, cerr)
		}
	}
	return err
}

// close stops the committer (which flushes and fsyncs) and any compaction,
// then releases the lock.
func (d *durable) close() error {
	close(d.done)
	d.wg.Wait()
	if err := d.lock.Close(); err != nil && d.closeErr == nil && !errors.Is(err, os.ErrClosed) {
		d.closeErr = err
	}
	if d.compacting {
		// The committer has exited; a finished compaction's result is
		// buffered here and only needs logging.
		select {
		case err := <-d.compacted:
			if err != nil && !errors.Is(err, errAborted) {
				d.cfg.Logger.Warn("table compaction failed at close", "table", d.cfg.Name, "err", err)
			}
		default:
		}
	}
	return d.closeErr
}
