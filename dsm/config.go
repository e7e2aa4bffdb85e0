package dsm

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/notp-go/notp/internal/replicated"
	"github.com/notp-go/notp/internal/replicated/payload"
)

// Defaults applied by [New] to zero Config fields.
const (
	DefaultName            = "dsm"
	DefaultMinWait         = replicated.DefaultMinWait
	DefaultMaxWait         = replicated.DefaultMaxWait
	DefaultTimeout         = replicated.DefaultTimeout
	DefaultSweepInterval   = replicated.DefaultSweepInterval
	DefaultHandoffInterval = time.Second
	DefaultMaxSemaphores   = 1 << 16
	DefaultMaxSize         = 1024
	// MaxTTL is the longest holder TTL an owner accepts.
	MaxTTL = payload.MaxTTL
	// MaxIDLen bounds semaphore IDs and holder names in bytes.
	MaxIDLen = payload.MaxNameLen
)

// NoRetries as Config.Retries makes every Post a single attempt.
const NoRetries = replicated.NoRetries

// Config configures a [DSM]. New copies it; the zero value of each field
// selects the documented default. Every node of a cluster must run its DSM
// with the same Name.
type Config struct {
	// Name is the genserver name of the DSM on every node; "" = "dsm".
	Name string
	// Retries is how many times a Post that found the semaphore full is
	// tried again after a random wait; 0 = until the request's deadline,
	// NoRetries = one attempt only.
	Retries int
	// MinWait and MaxWait bound the random wait before a retry: uniform in
	// [MinWait, MaxWait). 0 = 10 ms and 100 ms.
	MinWait, MaxWait time.Duration
	// Timeout bounds a request whose ctx has no deadline; 0 = 30 s.
	Timeout time.Duration
	// Dir is where this node keeps the semaphores it owns: a durable table
	// (package table) named Name, fsynced before each answer; "" = memory
	// only.
	Dir string
	// SweepInterval is how often expired holders are dropped; 0 = 1 s.
	// Expired holders stop counting the moment they expire anyway.
	SweepInterval time.Duration
	// HandoffInterval is how often a node checks for semaphores it holds
	// but no longer owns (besides on every ring change) and hands them to
	// their owner; 0 = 1 s. A node that just became an owner answers
	// requests for semaphores it does not have with CodeMoving, which
	// clients retry, for 3 HandoffIntervals plus one hand-off call's
	// timeout (5 s) after each ring change, so that a hand-off in flight
	// is not mistaken for a missing semaphore (a semaphore that does not
	// exist is reported as such only after that window).
	HandoffInterval time.Duration
	// MaxSemaphores bounds the semaphores one node holds; 0 = 65536.
	MaxSemaphores int
	// MaxSize bounds a semaphore's n (and so its holders); 0 = 1024.
	MaxSize int
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// Logger receives the DSM's logs; nil discards.
	Logger *slog.Logger
}

// setDefaults fills the zero fields: those every replicated service has
// through package replicated, then the hand-off interval and the size bounds.
func (c *Config) setDefaults() {
	c.fields().SetDefaults(DefaultName)
	replicated.Default(&c.HandoffInterval, DefaultHandoffInterval)
	replicated.Default(&c.MaxSemaphores, DefaultMaxSemaphores)
	replicated.Default(&c.MaxSize, DefaultMaxSize)
}

// Validate reports a field out of range (after defaults).
func (c *Config) Validate() error {
	switch {
	case c.HandoffInterval < 0:
		return fmt.Errorf("%w: negative HandoffInterval", ErrInvalidConfig)
	case c.MaxSemaphores < 0 || c.MaxSize < 0 || c.MaxSize > 1<<16:
		return fmt.Errorf("%w: MaxSemaphores or MaxSize out of range", ErrInvalidConfig)
	}
	return c.fields().Validate(ErrInvalidConfig)
}

// fields points at the fields package replicated defaults and checks:
// all but Dir, HandoffInterval, MaxSemaphores and MaxSize.
func (c *Config) fields() replicated.Fields {
	return replicated.Fields{Name: &c.Name, Retries: &c.Retries, MinWait: &c.MinWait, MaxWait: &c.MaxWait,
		Timeout: &c.Timeout, SweepInterval: &c.SweepInterval, Now: &c.Now, Logger: &c.Logger}
}
