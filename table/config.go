package table

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults of the Config fields whose zero value means "the default".
const (
	DefaultWriteThreshold  = 10000
	DefaultAutoSave        = 3 * time.Minute
	DefaultMaxKeyBytes     = 4 << 10
	DefaultMaxValueBytes   = 1 << 20
	DefaultMaxPendingBytes = 4 << 20
	// MaxNameLen bounds Config.Name.
	MaxNameLen = 100
	// MinInterval is the shortest SyncInterval and AutoSave: shorter
	// ones would keep a goroutine busy ticking.
	MinInterval = time.Millisecond
)

// SyncPolicy says when a durable table's writes reach the disk. Its zero
// value is SyncAlways.
type SyncPolicy time.Duration

const (
	// SyncAlways: a write returns after its record is on disk (fsynced).
	// Concurrent writers share one fsync (group commit), so throughput
	// grows with the number of writers while each waits about one fsync.
	SyncAlways SyncPolicy = 0
	// SyncNever: a write returns once its record is queued in memory;
	// the log is written out promptly but fsynced only by compaction and
	// Close. A crash of the process loses nothing already written out; a
	// crash of the machine loses what the operating system had not yet
	// written back.
	SyncNever SyncPolicy = -1
)

// SyncInterval returns the policy that returns from writes once they are
// queued in memory and fsyncs the log every d: a machine crash loses at
// most about d of acknowledged writes. d <= 0 gives SyncAlways; Open
// rejects d under MinInterval.
func SyncInterval(d time.Duration) SyncPolicy {
	if d <= 0 {
		return SyncAlways
	}
	return SyncPolicy(d)
}

// String names the policy.
func (p SyncPolicy) String() string {
	switch {
	case p == SyncAlways:
		return "always"
	case p == SyncNever:
		return "never"
	case p > 0:
		return "every " + time.Duration(p).String()
	}
	return fmt.Sprintf("invalid(%d)", int64(p))
}

// Config configures a Table. The zero value is a valid in-memory table;
// set Dir and Name for a durable one.
type Config struct {
	// Dir is the directory of a durable table's files (notp's DTable),
	// created if missing. Empty makes an in-memory table (notp's MTable)
	// and every durability field below is ignored.
	Dir string
	// Name names the table's files inside Dir ("<Name>_LATEST.LOG" and
	// so on). Required with Dir: 1 to MaxNameLen bytes of ASCII letters,
	// digits, '-', '_' and '.', not starting with '.'.
	Name string
	// Sync is the durability policy of writes. Zero is SyncAlways.
	Sync SyncPolicy
	// WriteThreshold is how many records the live log holds before it is
	// compacted into the snapshot. 0 means DefaultWriteThreshold (10000);
	// negative turns count-triggered compaction off. Lower values keep
	// the log and the time to open short at the cost of more snapshot
	// writes, each proportional to the table's size.
	WriteThreshold int
	// AutoSave compacts after this long without writes, when the log
	// holds any record. 0 means DefaultAutoSave (3 min); negative turns it
	// off; at least MinInterval otherwise.
	AutoSave time.Duration
	// Compress gzips snapshots (logs are never compressed): smaller files
	// for slower compactions and opens.
	Compress bool
	// MaxKeyBytes bounds keys, set members and hash fields. 0 means
	// DefaultMaxKeyBytes (4 KiB).
	MaxKeyBytes int
	// MaxValueBytes bounds scalar and hash field values. 0 means
	// DefaultMaxValueBytes (1 MiB).
	MaxValueBytes int
	// MaxPendingBytes bounds the log records buffered in memory ahead of
	// the disk under SyncInterval and SyncNever: a writer that finds more
	// waits until they are written out. 0 means DefaultMaxPendingBytes
	// (4 MiB).
	MaxPendingBytes int
	// Logger receives compaction failures (Warn) and recovery notes
	// (Info). Nil discards.
	Logger *slog.Logger
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.WriteThreshold == 0 {
		c.WriteThreshold = DefaultWriteThreshold
	}
	if c.AutoSave == 0 {
		c.AutoSave = DefaultAutoSave
	}
	if c.MaxKeyBytes == 0 {
		c.MaxKeyBytes = DefaultMaxKeyBytes
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = DefaultMaxValueBytes
	}
	if c.MaxPendingBytes == 0 {
		c.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports whether c can open a table. The errors wrap
// ErrInvalidConfig.
func (c Config) Validate() error {
	if c.Dir != "" || c.Name != "" {
		if err := validName(c.Name); err != nil {
			return err
		}
	}
	switch {
	case c.Sync < SyncNever:
		return fmt.Errorf("%w: Sync %v", ErrInvalidConfig, c.Sync)
	case c.Sync > 0 && time.Duration(c.Sync) < MinInterval:
		return fmt.Errorf("%w: Sync interval %v is under %v", ErrInvalidConfig, time.Duration(c.Sync), MinInterval)
	case c.AutoSave > 0 && c.AutoSave < MinInterval:
		return fmt.Errorf("%w: AutoSave %v is under %v", ErrInvalidConfig, c.AutoSave, MinInterval)
	case c.MaxKeyBytes < 0 || c.MaxKeyBytes > 1<<20:
		return fmt.Errorf("%w: MaxKeyBytes %d outside [0, 1 MiB]", ErrInvalidConfig, c.MaxKeyBytes)
	case c.MaxValueBytes < 0 || c.MaxValueBytes > 256<<20:
		return fmt.Errorf("%w: MaxValueBytes %d outside [0, 256 MiB]", ErrInvalidConfig, c.MaxValueBytes)
	case c.MaxPendingBytes < 0:
		return fmt.Errorf("%w: MaxPendingBytes %d is negative", ErrInvalidConfig, c.MaxPendingBytes)
	}
	return nil
}

// validName accepts names safe as a file name prefix on every system.
func validName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: Name %q must be 1 to %d bytes", ErrInvalidConfig, name, MaxNameLen)
	}
	if name[0] == '.' {
		return fmt.Errorf("%w: Name %q starts with '.'", ErrInvalidConfig, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: Name %q holds %q; use letters, digits, '-', '_' and '.'", ErrInvalidConfig, name, c)
		}
	}
	return nil
}
