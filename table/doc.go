// Package table is notp's key/value table: DTable when durable (Config.Dir
// set) and MTable when in memory (Config.Dir empty), with one API.
//
// # Data model
//
// A key holds one of three kinds of value (Kind): a scalar byte string
// (Set, Get), a set of strings (SSet, SDel, SMember) or a hash of fields
// to byte strings (HSet, HDel, HGet). A key keeps its kind until it is
// deleted (Del, Clear); an operation of another kind fails with a
// *TypeError (code CodeInvalidType, matching ErrWrongType), worded as
// notp words it ("Invalid command 'sset' against key 'k' of type
// 'scalar'"), and changes nothing. SMember of an
// absent key is false (an empty set); Get and HGet of an absent key or
// field fail with ErrNotFound. Removing the last member of a set or field
// of a hash deletes the key. Keys, members and fields are bounded by
// Config.MaxKeyBytes, values by Config.MaxValueBytes (ErrTooLarge).
// Values are copied in and out: the table never shares a buffer with its
// caller. ForEach walks the keys in order with a copy of each value,
// holding no lock while its callback runs, and stops at the callback's
// first error or when its context is done.
//
//	t, err := table.Open(table.Config{Dir: "data", Name: "jobs"})
//	...
//	defer t.Close()
//	err = t.HSet("job:42", "owner", []byte("node-a"))
//	owner, err := t.HGet("job:42", "owner")
//
// # Durability
//
// Every change is applied in memory and then appended to a log. When
// Set (or any other write) returns depends on Config.Sync:
//
//   - SyncAlways (the zero value): after the record is fsynced. Writers
//     that arrive while an fsync runs are written and fsynced together
//     by the next one (group commit), so one writer gets about one fsync
//     per write and many writers share each fsync. A process crash or a
//     machine crash loses no write that returned.
//   - SyncInterval(d): once the record is queued; the log is written out
//     at once and fsynced every d. A crash of the process loses nothing
//     written out; a crash of the machine may lose the last d or so.
//   - SyncNever: as SyncInterval without the periodic fsync; the log is
//     fsynced only when compacted and on Close.
//
// Under SyncInterval and SyncNever a writer waits only when more than
// Config.MaxPendingBytes of records are queued. Reads see a write as soon
// as it is applied in memory, which may be before its writer returns.
//
// A disk error while writing or fsyncing the log is sticky: the memory
// may then hold changes the disk does not, so every later write fails
// with that error (reads still work) until the table is reopened, which
// rebuilds the memory from the disk.
//
// # Files and compaction
//
// The table Name in Dir uses <Name>_LATEST.LOG (the live log),
// <Name>_PREV.LOG (a log being compacted), <Name>_DATA.SNAP (the
// snapshot), <Name>_DATA_PREV.SNAP (a snapshot being written) and
// <Name>.LOCK, locked while the table is open (a second Open fails with
// ErrLocked).
//
// A log starts with a header: "NTPTLOG1", its generation (8 bytes) and a
// CRC-32C of both. Records follow, each a 4-byte length, the CRC-32C of
// the body and the body: an opcode byte and its fields, each a uvarint
// length and its bytes. A snapshot is "NTPTSNP1" and a flags byte
// (gzipped body with Config.Compress), a body of the same records that
// rebuild every key, and a footer: the record count, the log generation
// the snapshot covers, the body's CRC-32C, "NTPTEND1" and the footer's
// own CRC-32C.
//
// After Config.WriteThreshold records in the live log, or Config.AutoSave
// without writes when the log holds any record, the log is compacted: the
// live log is renamed to the PREV log and a new live log of the next
// generation is started. Writers wait for nothing more than that swap. A
// background goroutine then rebuilds the table as of the end of the PREV
// log from the files alone (snapshot plus PREV log), writes it to the
// DATA_PREV snapshot, fsyncs it, renames it over DATA, fsyncs the
// directory and removes the PREV log. A compaction needs memory for a
// second copy of the table while it runs. If it fails (the error is
// logged), the PREV log stays and the next trigger retries it. Idle
// reports true when no compaction is running (an in-memory table is
// always idle).
//
// # Recovery
//
// Open loads the newest snapshot whose footer, checksum and record count
// check out (a complete DATA_PREV left by a compaction interrupted just
// before its rename counts; a partial one is ignored and removed), then
// replays the PREV log and the live log if their generations are newer
// than the snapshot's, so no log is ever applied twice. Replay stops at
// the first torn or damaged record (a length running past the end of the
// file, a bad checksum or a malformed body) and the live log is truncated
// there: a crash in the middle of a write costs only the unacknowledged
// tail and never prevents opening. A failed read is not damage: it fails
// Open (or the compaction) and cuts nothing. Every length read from disk
// is checked against the bytes left in the file before anything is
// allocated. A damaged DATA snapshot with no valid successor fails Open
// with ErrCorrupt, since the logs it replaced are gone. An interrupted
// compaction is resumed in the background.
//
// # Concurrency
//
// All methods are safe for concurrent use. Reads take a shared lock;
// writes an exclusive one for the in-memory change and the queuing of
// their record, never for disk I/O, so records reach the log in the order
// their changes were made. Under SyncAlways the first waiting writer
// writes and fsyncs everything queued so far, while the writers arriving
// meanwhile queue behind it for the next fsync; a lone writer does its
// own write and fsync with no hand-off between goroutines. Each durable
// table has one goroutine that writes the log out under SyncInterval and
// SyncNever, keeps the fsync and AutoSave clocks and starts compactions,
// plus one more while a compaction runs. Close stops both, flushing and
// fsyncing the log whatever the Sync policy; an unfinished compaction is
// abandoned and resumed by the next Open.
package table
