package dlm

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/notp-go/notp/internal/replicated"
	"github.com/notp-go/notp/internal/replicated/payload"
)

// Defaults applied by [New] to zero Config fields.
const (
	DefaultName          = "dlm"
	DefaultReplicas      = 3
	DefaultMinWait       = replicated.DefaultMinWait
	DefaultMaxWait       = replicated.DefaultMaxWait
	DefaultTimeout       = replicated.DefaultTimeout
	DefaultDriftFactor   = 0.01
	DefaultSweepInterval = replicated.DefaultSweepInterval
	DefaultMaxLocks      = 1 << 16
	DefaultMaxHolders    = 1024
	// MaxTTL is the longest lock TTL a replica accepts.
	MaxTTL = payload.MaxTTL
	// MaxIDLen bounds lock IDs and holder names in bytes.
	MaxIDLen = payload.MaxNameLen
)

// NoRetries as Config.Retries makes every lock request a single attempt.
const NoRetries = replicated.NoRetries

// Config configures a [DLM]. New copies it; the zero value of each field
// selects the documented default. Every node of a cluster must run its DLM
// with the same Name, Replicas and Quorum.
type Config struct {
	// Name is the genserver name the replica registers on every node;
	// "" = "dlm".
	Name string
	// Replicas is the number of replicas of each lock: the first Replicas
	// distinct nodes of the ring's preference list for the lock ID. 0 =
	// 3. A smaller ring gives fewer replicas.
	Replicas int
	// Quorum is the number of replicas that must grant a lock; 0 = a
	// majority (n/2+1) of the replicas the preference list gives. A Quorum
	// above that count makes every request fail. Less than a majority
	// gives up mutual exclusion.
	Quorum int
	// Retries is how many times a refused lock request is tried again
	// after a random wait; 0 = until the request's deadline, NoRetries =
	// one attempt only.
	Retries int
	// MinWait and MaxWait bound the random wait before a retry: uniform in
	// [MinWait, MaxWait). 0 = 10 ms and 100 ms.
	MinWait, MaxWait time.Duration
	// Timeout bounds a whole lock or unlock request whose ctx has no
	// deadline; 0 = 30 s.
	Timeout time.Duration
	// DriftFactor is the share of a TTL set aside for clock drift between
	// nodes: a lock's Validity is ttl - elapsed - (ttl*DriftFactor + 2 ms).
	// 0 = 0.01.
	DriftFactor float64
	// Dir is where this node's replica keeps its locks and fencing
	// counter: a durable table (package table) named Name, every change
	// fsynced before the replica answers (table.SyncAlways, group-committed
	// across concurrent requests); "" = memory only (a restarted replica
	// forgets everything, which voids the fencing guarantee for locks it
	// granted).
	Dir string
	// SweepInterval is how often expired locks are dropped from memory and
	// disk (they are refused as expired from the moment they expire
	// anyway); 0 = 1 s.
	SweepInterval time.Duration
	// MaxLocks bounds the lock IDs one replica holds at once; a request
	// past it is answered with CodeFull. 0 = 65536.
	MaxLocks int
	// MaxHolders bounds the holders of one read lock; 0 = 1024.
	MaxHolders int
	// Now is the clock; nil = time.Now. Lock expiry, a lock's Validity and
	// the time floor of a write lock's token use it, and restored locks
	// compare their wall-clock start with it.
	Now func() time.Time
	// Logger receives the DLM's logs; nil discards.
	Logger *slog.Logger
}

// setDefaults fills the zero fields: those every replicated service has
// through package replicated, then the replica count and the lock limits.
func (c *Config) setDefaults() {
	c.fields().SetDefaults(DefaultName)
	replicated.Default(&c.Replicas, DefaultReplicas)
	replicated.Default(&c.DriftFactor, DefaultDriftFactor)
	replicated.Default(&c.MaxLocks, DefaultMaxLocks)
	replicated.Default(&c.MaxHolders, DefaultMaxHolders)
}

// Validate reports a field out of range (after defaults).
func (c *Config) Validate() error {
	switch {
	case c.Replicas < 0:
		return fmt.Errorf("%w: Replicas %d < 0", ErrInvalidConfig, c.Replicas)
	case c.Quorum < 0:
		return fmt.Errorf("%w: Quorum %d < 0", ErrInvalidConfig, c.Quorum)
	case c.Replicas > 0 && c.Quorum > c.Replicas:
		return fmt.Errorf("%w: Quorum %d > Replicas %d", ErrInvalidConfig, c.Quorum, c.Replicas)
	case c.DriftFactor < 0 || c.DriftFactor >= 0.5:
		return fmt.Errorf("%w: DriftFactor %v not in [0, 0.5)", ErrInvalidConfig, c.DriftFactor)
	case c.MaxLocks < 0 || c.MaxHolders < 0:
		return fmt.Errorf("%w: negative MaxLocks or MaxHolders", ErrInvalidConfig)
	}
	return c.fields().Validate(ErrInvalidConfig)
}

// fields points at the fields package replicated defaults and checks:
// all but Replicas, Quorum, DriftFactor, Dir, MaxLocks and MaxHolders.
func (c *Config) fields() replicated.Fields {
	return replicated.Fields{Name: &c.Name, Retries: &c.Retries, MinWait: &c.MinWait, MaxWait: &c.MaxWait,
		Timeout: &c.Timeout, SweepInterval: &c.SweepInterval, Now: &c.Now, Logger: &c.Logger}
}
