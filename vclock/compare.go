package vclock

import (
	"strconv"
	"sync/atomic"
)

// Order is the causal relation between two clocks, as returned by
// [Clock.Compare].
type Order int

// The possible results of [Clock.Compare].
const (
	// Before: the receiver is strictly older; the other clock descends it.
	Before Order = iota + 1
	// Equal: both clocks have the same ids with the same counts (each
	// descends the other). Their Insert and Time fields may still differ;
	// see [Clock.Equal].
	Equal
	// After: the receiver strictly descends the other clock.
	After
	// Concurrent: neither clock descends the other; the histories diverged.
	Concurrent
)

// String returns the name of the order, such as "Concurrent".
func (o Order) String() string {
	switch o {
	case Before:
		return "Before"
	case Equal:
		return "Equal"
	case After:
		return "After"
	case Concurrent:
		return "Concurrent"
	}
	return "Order(" + strconv.Itoa(int(o)) + ")"
}

// rankSeq hands out lock-order ranks; see lockPair.
var rankSeq atomic.Uint64

// lockRank returns c's position in the global lock order, assigning one on
// first use so that the zero Clock works.
func (c *Clock) lockRank() uint64 {
	if r := c.rank.Load(); r != 0 {
		return r
	}
	c.rank.CompareAndSwap(0, rankSeq.Add(1))
	return c.rank.Load()
}

// lockPair locks c (for writing if write, else for reading) and o for
// reading, always in rank order, so that a.Merge(b) racing b.Merge(a) cannot
// deadlock. c and o must differ.
func lockPair(c, o *Clock, write bool) {
	lockC := c.mu.RLock
	if write {
		lockC = c.mu.Lock
	}
	if c.lockRank() < o.lockRank() {
		lockC()
		o.mu.RLock()
	} else {
		o.mu.RLock()
		lockC()
	}
}

// unlockPair undoes lockPair.
func unlockPair(c, o *Clock, write bool) {
	o.mu.RUnlock()
	if write {
		c.mu.Unlock()
	} else {
		c.mu.RUnlock()
	}
}

// Merge folds o into c: ids missing from c are copied verbatim (Insert
// included); for ids in both, the higher count wins and equal counts keep
// the entry with the later Time, c's own on a tie. Merging an empty (or nil)
// clock changes nothing and merging into an empty clock makes c a copy of o.
// o is not modified; c.Merge(c) is a no-op.
func (c *Clock) Merge(o *Clock) {
	if o == nil || o == c {
		return
	}
	lockPair(c, o, true)
	defer unlockPair(c, o, true)
	if len(o.entries) == 0 {
		return
	}
	for id, theirs := range o.entries {
		ours, ok := c.entries[id]
		if !ok || theirs.Count > ours.Count || (theirs.Count == ours.Count && theirs.Time > ours.Time) {
			c.set(id, theirs)
		}
	}
}

// Descends reports whether c has seen everything o has: true if o is empty
// (or nil), false if c is empty and o is not, and otherwise true exactly when
// every id of o is present in c with a count at least as high. Insert and
// Time are ignored. Equal clocks descend each other.
func (c *Clock) Descends(o *Clock) bool {
	if o == nil || o == c {
		return true
	}
	lockPair(c, o, false)
	defer unlockPair(c, o, false)
	return descends(c.entries, o.entries)
}

// descends implements Descends on the raw maps.
func descends(a, b map[string]Entry) bool {
	if len(b) == 0 {
		return true
	}
	if len(a) < len(b) {
		return false // b has an id a lacks; this also covers an empty a
	}
	for id, theirs := range b {
		ours, ok := a[id]
		if !ok || ours.Count < theirs.Count {
			return false
		}
	}
	return true
}

// Compare returns the causal order of c relative to o, consistent with
// [Clock.Descends] in both directions: Equal if each descends the other
// (same ids, same counts), After if only c descends o, Before if only o
// descends c, and Concurrent otherwise. A nil o is an empty clock.
//
// Compare looks at counts only. Two clocks can compare Equal yet not be
// [Clock.Equal], which also requires identical Insert and Time fields.
func (c *Clock) Compare(o *Clock) Order {
	if o == c {
		return Equal
	}
	var after, before bool
	c.readWith(o, func(theirs map[string]Entry) {
		after, before = descends(c.entries, theirs), descends(theirs, c.entries)
	})
	switch {
	case after && before:
		return Equal
	case after:
		return After
	case before:
		return Before
	}
	return Concurrent
}

// Equal reports whether c and o hold the same ids with identical Count,
// Insert and Time. It is stricter than Compare(o) == [Equal], which looks at
// counts only: a clock and its serialised copy are Equal, while two replicas
// that counted the same events at different times merely compare Equal.
// A nil o is an empty clock.
func (c *Clock) Equal(o *Clock) bool {
	if o == c {
		return true
	}
	equal := true
	c.readWith(o, func(theirs map[string]Entry) {
		if len(c.entries) != len(theirs) {
			equal = false
			return
		}
		for id, ours := range c.entries {
			if e, ok := theirs[id]; !ok || e != ours {
				equal = false
				return
			}
		}
	})
	return equal
}

// readWith runs fn with c and o read-locked (in lock order) and o's
// entries; a nil o is an empty clock (fn gets a nil map).
func (c *Clock) readWith(o *Clock, fn func(theirs map[string]Entry)) {
	if o == nil {
		c.mu.RLock()
		defer c.mu.RUnlock()
		fn(nil)
		return
	}
	lockPair(c, o, false)
	defer unlockPair(c, o, false)
	fn(o.entries)
}
