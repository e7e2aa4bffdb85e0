package dlm

import (
	"fmt"
	"time"

	"github.com/notp-go/notp/dlm/internal/wire"
	"github.com/notp-go/notp/internal/replicated/payload"
)

// The replica protocol lives in package wire (small, so its fuzz targets
// run fast); these names keep the rest of the package short.
type (
	request = wire.Request
	reply   = wire.Reply
)

const (
	evRLock   = wire.RLock
	evWLock   = wire.WLock
	evRUnlock = wire.RUnlock
	evWUnlock = wire.WUnlock
	evCommit  = wire.Commit
	evSweep   = wire.Sweep
)

func encode(v any) []byte { return wire.Encode(v) }

func validName(what, s string) error { return payload.ValidName(what, s) }

func validTTL(ttl time.Duration) error {
	if ttl < time.Millisecond || ttl > MaxTTL {
		return fmt.Errorf("ttl %v not in [1ms, %v]", ttl, MaxTTL)
	}
	return nil
}
