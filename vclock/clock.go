package vclock

import (
	"iter"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Entry is one actor's slot in a [Clock].
type Entry struct {
	// Count is the number of events the actor has recorded. Only Count takes
	// part in causality ([Clock.Descends], [Clock.Compare]).
	Count uint64 `json:"count" msgpack:"count"`
	// Insert is when the entry was first created on the process that created
	// it, in microseconds since the Unix epoch. It is copied, not reset, when
	// an entry arrives through [Clock.Merge].
	Insert int64 `json:"insert" msgpack:"insert"`
	// Time is when the entry was last updated, in microseconds since the Unix
	// epoch. Merge uses it to break ties between equal counts and [Clock.Trim]
	// uses it to find old entries.
	Time int64 `json:"time" msgpack:"time"`
}

// Clock is a vector clock: a map from actor id to [Entry]. The zero value is
// an empty clock that reads time from [time.Now]; [New] and [NewWithClock]
// return ready pointers.
//
// A Clock is safe for concurrent use. It must not be copied after first use;
// use [Clock.Clone]. Put a *Clock, not a Clock, in message structs: the
// codec methods have pointer receivers, so encoding/json silently writes {}
// for a Clock field of a struct passed by value (msgpack returns an error).
type Clock struct {
	mu      sync.RWMutex
	entries map[string]Entry // guarded by mu; nil means empty
	now     func() time.Time // nil means time.Now; set only at construction
	rank    atomic.Uint64    // lock order between clocks; see lockPair
}

// New returns an empty clock that reads the current time from [time.Now].
func New() *Clock {
	return &Clock{}
}

// NewWithClock returns an empty clock that reads the current time from now,
// so that tests and simulations control the Insert and Time of new entries.
// A nil now means [time.Now]. Clones of the clock share now. The clock calls
// now while holding its lock, so now must not call the clock's methods.
func NewWithClock(now func() time.Time) *Clock {
	return &Clock{now: now}
}

// micros converts t to microseconds since the Unix epoch, clamped to
// [0, math.MaxInt64] so that every recorded time survives encoding (decoders
// reject negative times).
func micros(t time.Time) int64 {
	switch {
	case t.Unix() < 0:
		return 0
	case t.Unix() >= math.MaxInt64/1_000_000:
		return math.MaxInt64
	}
	return t.UnixMicro()
}

// nowMicros returns the clock's current time in microseconds.
func (c *Clock) nowMicros() int64 {
	if c.now == nil {
		return micros(time.Now())
	}
	return micros(c.now())
}

// set stores e under id, allocating the map on first use. c.mu must be held
// for writing.
func (c *Clock) set(id string, e Entry) {
	if c.entries == nil {
		c.entries = make(map[string]Entry)
	}
	c.entries[id] = e
}

// Insert adds id with count 0, Insert and Time set to now. It does nothing if
// id is already present (an existing entry is never reset) or if id is empty.
func (c *Clock) Insert(id string) {
	if id == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[id]; ok {
		return
	}
	now := c.nowMicros()
	c.set(id, Entry{Insert: now, Time: now})
}

// Update sets the count of id and stamps its Time with the current time,
// creating the entry (Insert = now) if absent. An empty id is ignored.
func (c *Clock) Update(id string, count uint64) {
	if id == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.update(id, count, c.nowMicros())
}

// UpdateAt is [Clock.Update] with an explicit update time t. Times before the
// Unix epoch are recorded as 0. The Insert time of a new entry is still the
// current time, as in notp.
func (c *Clock) UpdateAt(id string, count uint64, t time.Time) {
	if id == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.update(id, count, micros(t))
}

// update implements Update and UpdateAt; c.mu must be held for writing.
func (c *Clock) update(id string, count uint64, t int64) {
	e, ok := c.entries[id]
	if !ok {
		e.Insert = c.nowMicros()
	}
	e.Count, e.Time = count, t
	c.set(id, e)
}

// Remove deletes id from the clock. Removing an absent id does nothing.
func (c *Clock) Remove(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
}

// Increment adds one to the count of id, creating the entry at count 1 if
// absent, stamps its Time with the current time and returns the new count.
// The count saturates at [math.MaxUint64] rather than wrapping, which would
// make the clock look older. An empty id is ignored and returns 0.
func (c *Clock) Increment(id string) uint64 {
	if id == "" {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.nowMicros()
	e, ok := c.entries[id]
	if !ok {
		e.Insert = now
	}
	if e.Count < math.MaxUint64 {
		e.Count++
	}
	e.Time = now
	c.set(id, e)
	return e.Count
}

// Get returns the entry of id and whether it is present.
func (c *Clock) Get(id string) (Entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[id]
	return e, ok
}

// Count returns the count of id, or 0 if id is absent. Use [Clock.Has] to
// tell an absent id from one inserted with count 0.
func (c *Clock) Count(id string) uint64 {
	e, _ := c.Get(id)
	return e.Count
}

// Has reports whether id is present.
func (c *Clock) Has(id string) bool {
	_, ok := c.Get(id)
	return ok
}

// Nodes returns the ids present in the clock, sorted.
func (c *Clock) Nodes() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Sorted(maps.Keys(c.entries))
}

// Size returns the number of entries.
func (c *Clock) Size() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// Clone returns a deep copy of c that shares its time source.
func (c *Clock) Clone() *Clock {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return &Clock{entries: maps.Clone(c.entries), now: c.now}
}

// All returns an iterator over the entries in ascending id order. It iterates
// over a snapshot taken when iteration starts, so the loop body may use or
// modify the clock.
func (c *Clock) All() iter.Seq2[string, Entry] {
	return func(yield func(string, Entry) bool) {
		ids, entries := c.snapshot()
		for i, id := range ids {
			if !yield(id, entries[i]) {
				return
			}
		}
	}
}

// snapshot returns the ids in ascending order and their entries.
func (c *Clock) snapshot() ([]string, []Entry) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ids := slices.Sorted(maps.Keys(c.entries))
	entries := make([]Entry, len(ids))
	for i, id := range ids {
		entries[i] = c.entries[id]
	}
	return ids, entries
}

// String returns the counts in id order, as in "{a:2 b:1}", for logs and
// debugging. It leaves out Insert and Time.
func (c *Clock) String() string {
	var b strings.Builder
	b.WriteByte('{')
	i := 0
	for id, e := range c.All() {
		if i > 0 {
			b.WriteByte(' ')
		}
		i++
		b.WriteString(id)
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(e.Count, 10))
	}
	b.WriteByte('}')
	return b.String()
}
