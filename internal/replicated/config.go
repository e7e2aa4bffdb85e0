package replicated

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults of the Config fields dlm and dsm share.
const (
	DefaultMinWait       = 10 * time.Millisecond
	DefaultMaxWait       = 100 * time.Millisecond
	DefaultTimeout       = 30 * time.Second
	DefaultSweepInterval = time.Second
	// NoRetries as a Retries field makes every request a single attempt.
	NoRetries = -1
)

// Default sets *field to def when it holds its zero value.
func Default[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// PrepareConfig is the start of a replicated service's New: it refuses a
// nil node (nilNode) with an error wrapping invalid, the service's
// ErrInvalidConfig, then fills the zero fields of the service's Config
// (setDefaults) and checks it (validate).
func PrepareConfig(nilNode bool, invalid error, setDefaults func(), validate func() error) error {
	if nilNode {
		return fmt.Errorf("%w: nil node", invalid)
	}
	setDefaults()
	return validate()
}

// Fields points at the Config fields dlm and dsm share, so the defaults
// and the checks of those fields are written once while each package
// keeps its own Config type.
type Fields struct {
	Name                   *string
	Retries                *int
	MinWait, MaxWait       *time.Duration
	Timeout, SweepInterval *time.Duration
	Now                    *func() time.Time
	Logger                 **slog.Logger
}

// SetDefaults replaces the zero fields by their defaults, the name by
// name, Now by time.Now and Logger by one that discards.
func (f Fields) SetDefaults(name string) {
	Default(f.Name, name)
	Default(f.MinWait, DefaultMinWait)
	Default(f.MaxWait, DefaultMaxWait)
	Default(f.Timeout, DefaultTimeout)
	Default(f.SweepInterval, DefaultSweepInterval)
	if *f.Now == nil {
		*f.Now = time.Now
	}
	if *f.Logger == nil {
		*f.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports a field out of range, wrapping invalid (the package's
// ErrInvalidConfig).
func (f Fields) Validate(invalid error) error {
	switch {
	case *f.Retries < NoRetries:
		return fmt.Errorf("%w: Retries %d < %d", invalid, *f.Retries, NoRetries)
	case *f.MinWait < 0 || *f.MaxWait < *f.MinWait:
		return fmt.Errorf("%w: waits [%v, %v)", invalid, *f.MinWait, *f.MaxWait)
	case *f.Timeout < 0 || *f.SweepInterval < 0:
		return fmt.Errorf("%w: negative Timeout or SweepInterval", invalid)
	}
	return nil
}

// Expiry restores a grant persisted as its wall-clock start (Unix ms) and
// TTL (ms): when it expires, on now's clock, and whether it is still live.
// A start in the future (a clock that moved back) gives at most one TTL
// from now.
func Expiry(startMs, ttlMs int64, now time.Time) (expires time.Time, live bool) {
	ttl := time.Duration(ttlMs) * time.Millisecond
	left := time.UnixMilli(startMs).Add(ttl).Sub(now)
	if left <= 0 {
		return time.Time{}, false
	}
	return now.Add(min(left, ttl)), true
}
