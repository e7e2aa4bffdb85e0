package table

import "sync/atomic"

// Stats counts a durable table's disk work since Open. An in-memory
// table's Stats are all zero.
type Stats struct {
	Records          uint64 // log records queued (writes that changed something)
	Batches          uint64 // writes of queued records to the log
	Syncs            uint64 // fsyncs of the log by batches (SyncAlways) and ticks (SyncInterval)
	LogBytes         uint64 // bytes written to the log
	PendingWaits     uint64 // writes that waited because MaxPendingBytes was reached
	Compactions      uint64 // compactions finished, successful or not
	CompactionErrors uint64 // compactions that failed (and will be retried)
}

type stats struct {
	records, batches, syncs, logBytes, pendingWaits, compactions, compactionErrors atomic.Uint64
}

// Stats returns the table's counters.
func (t *Table) Stats() Stats {
	if t.log == nil {
		return Stats{}
	}
	s := &t.log.stats
	return Stats{
		Records: s.records.Load(), Batches: s.batches.Load(), Syncs: s.syncs.Load(),
		LogBytes: s.logBytes.Load(), PendingWaits: s.pendingWaits.Load(),
		Compactions: s.compactions.Load(), CompactionErrors: s.compactionErrors.Load(),
	}
}

// Idle reports whether the table has no compaction (a snapshot of its
// log) running. An in-memory table is always idle. A compaction never
// blocks writers; Idle is for callers that want to wait for the disk to
// settle, as before taking a file-level backup of Dir.
func (t *Table) Idle() bool { return t.log == nil || !t.log.busy.Load() }
