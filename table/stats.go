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
