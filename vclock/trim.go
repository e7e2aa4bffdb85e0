package vclock

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrInvalidTrimOptions is returned by [TrimOptions.Validate].
var ErrInvalidTrimOptions = errors.New("vclock: invalid trim options")

// TrimOptions bound the size of a clock; see [Clock.Trim]. The zero value
// trims every entry not stamped in the future, so start from
// [DefaultTrimOptions].
type TrimOptions struct {
	// LowerBound is the size at or below which Trim does nothing. Negative
	// means 0. Default 10.
	LowerBound int
	// YoungBound gates trimming: Trim removes nothing unless the oldest
	// entry's age is strictly greater than YoungBound, so a burst of fresh
	// entries is never trimmed. Negative means 0. Default 20 s.
	YoungBound time.Duration
	// UpperBound is the size Trim reduces the clock to once the gate is open,
	// removing the oldest entries first. Negative means 0. Default 50.
	UpperBound int
	// OldBound is the age beyond which an entry is removed once the gate is
	// open, whatever the size (the scan stops at the first entry that is
	// neither over UpperBound nor too old). Negative means 0. Default 24 h.
	OldBound time.Duration
}

// DefaultTrimOptions returns notp's bounds: LowerBound 10, YoungBound 20 s,
// UpperBound 50, OldBound 24 h.
func DefaultTrimOptions() TrimOptions {
	return TrimOptions{
		LowerBound: 10,
		YoungBound: 20 * time.Second,
		UpperBound: 50,
		OldBound:   24 * time.Hour,
	}
}

// Validate reports negative fields, which Trim would treat as zero, as an
// error wrapping [ErrInvalidTrimOptions].
func (o TrimOptions) Validate() error {
	switch {
	case o.LowerBound < 0:
		return fmt.Errorf("%w: LowerBound %d < 0", ErrInvalidTrimOptions, o.LowerBound)
	case o.UpperBound < 0:
		return fmt.Errorf("%w: UpperBound %d < 0", ErrInvalidTrimOptions, o.UpperBound)
	case o.YoungBound < 0:
		return fmt.Errorf("%w: YoungBound %v < 0", ErrInvalidTrimOptions, o.YoungBound)
	case o.OldBound < 0:
		return fmt.Errorf("%w: OldBound %v < 0", ErrInvalidTrimOptions, o.OldBound)
	}
	return nil
}

// Trim drops old entries to bound the clock's size and returns how many it
// removed. With ages measured from now:
//
//  1. If Size() <= LowerBound, stop.
//  2. Order the entries by Time, oldest first (ties by id, so Trim is
//     deterministic).
//  3. If the oldest entry's age is not strictly greater than YoungBound,
//     stop.
//  4. Otherwise, repeatedly remove the oldest remaining entry while more than
//     UpperBound entries remain or its age exceeds OldBound; stop at the
//     first entry that meets neither condition.
//
// Once started, the loop may go below LowerBound, even to empty, as in notp.
// Trimming forgets history: a trimmed clock may wrongly descend a clock that
// knew the removed actors, so keep the number of actors well under the bounds
// and treat Trim as a safety valve.
func (c *Clock) Trim(now time.Time, opts TrimOptions) (removed int) {
	lower, upper := max(opts.LowerBound, 0), max(opts.UpperBound, 0)
	young, old := max(opts.YoungBound, 0).Microseconds(), max(opts.OldBound, 0).Microseconds()
	nowUs := micros(now)

	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) <= lower {
		return 0
	}
	type aged struct {
		id   string
		time int64
	}
	byAge := make([]aged, 0, len(c.entries))
	for id, e := range c.entries {
		byAge = append(byAge, aged{id, e.Time})
	}
	slices.SortFunc(byAge, func(a, b aged) int {
		return cmp.Or(cmp.Compare(a.time, b.time), cmp.Compare(a.id, b.id))
	})
	// Both operands lie in [0, MaxInt64], so the subtraction cannot overflow.
	if nowUs-byAge[0].time <= young {
		return 0
	}
	for _, e := range byAge {
		if len(c.entries) <= upper && nowUs-e.time <= old {
			break
		}
		delete(c.entries, e.id)
		removed++
	}
	return removed
}
