package dlm

import (
	"fmt"
	"time"

	"github.com/notp-go/notp/dlm/internal/wire"
)

// The replica protocol lives in package wire, small so that its fuzz
// targets run fast.
type (
	request = wire.Request
	reply   = wire.Reply
)

func encode(v any) []byte { return wire.Encode(v) }

// validTTL checks a lock's TTL before it is sent.
func validTTL(ttl time.Duration) error {
	if ttl < time.Millisecond || ttl > MaxTTL {
		return fmt.Errorf("ttl %v not in [1ms, %v]", ttl, MaxTTL)
	}
	return nil
}
