package vclock_test

import (
	"encoding/json"
	"errors"
	"maps"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/notp-go/notp/vclock"
)

// epoch is the fake "now" most tests start from.
var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeTime is a settable time source for NewWithClock.
type fakeTime struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeTime() *fakeTime { return &fakeTime{t: epoch} }

func (f *fakeTime) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeTime) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

// us returns t in microseconds since the epoch.
func us(t time.Time) int64 { return t.UnixMicro() }

// counts returns the id -> count map of c.
func counts(c *vclock.Clock) map[string]uint64 {
	m := map[string]uint64{}
	for id, e := range c.All() {
		m[id] = e.Count
	}
	return m
}

// clockOf builds a clock from entries via UpdateAt and then fixes Insert by
// decoding, so tests can state exact entries.
func clockOf(t *testing.T, entries map[string]vclock.Entry) *vclock.Clock {
	t.Helper()
	b, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	c := vclock.New()
	if err := json.Unmarshal(b, c); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return c
}

// Empty by default; notp's (id, count) constructor is New followed by Update.
func TestNewIsEmpty(t *testing.T) {
	c := vclock.New()
	if c.Size() != 0 || len(c.Nodes()) != 0 {
		t.Fatalf("New: size %d nodes %v, want empty", c.Size(), c.Nodes())
	}
	var zero vclock.Clock
	if zero.Size() != 0 || zero.Increment("a") != 1 {
		t.Fatal("zero Clock is not a usable empty clock")
	}
	ft := newFakeTime()
	c = vclock.NewWithClock(ft.Now)
	c.Update("a", 3)
	got, ok := c.Get("a")
	want := vclock.Entry{Count: 3, Insert: us(epoch), Time: us(epoch)}
	if !ok || got != want || c.Size() != 1 {
		t.Fatalf("after Update: %+v %v size %d, want %+v", got, ok, c.Size(), want)
	}
}

// Insert creates count 0 and never resets an existing entry.
func TestInsert(t *testing.T) {
	ft := newFakeTime()
	c := vclock.NewWithClock(ft.Now)
	c.Insert("a")
	if got, want := mustGet(t, c, "a"), (vclock.Entry{Insert: us(epoch), Time: us(epoch)}); got != want {
		t.Fatalf("Insert: %+v, want %+v", got, want)
	}
	c.Increment("a")
	ft.Advance(time.Second)
	c.Insert("a")
	if got, want := mustGet(t, c, "a"), (vclock.Entry{Count: 1, Insert: us(epoch), Time: us(epoch)}); got != want {
		t.Fatalf("second Insert reset the entry: %+v, want %+v", got, want)
	}
	if c.Size() != 1 {
		t.Fatalf("size %d, want 1", c.Size())
	}
}

// mustGet returns the entry of id, failing if absent.
func mustGet(t *testing.T, c *vclock.Clock, id string) vclock.Entry {
	t.Helper()
	e, ok := c.Get(id)
	if !ok {
		t.Fatalf("%q missing from %v", id, c)
	}
	return e
}

// Update sets the count, with the current or an explicit time.
func TestUpdate(t *testing.T) {
	ft := newFakeTime()
	c := vclock.NewWithClock(ft.Now)
	c.Update("a", 5)
	ft.Advance(time.Second)
	c.Update("a", 2) // counts may go down: Update sets, it does not max
	want := vclock.Entry{Count: 2, Insert: us(epoch), Time: us(epoch.Add(time.Second))}
	if got := mustGet(t, c, "a"); got != want {
		t.Fatalf("Update: %+v, want %+v", got, want)
	}
	at := epoch.Add(time.Hour)
	c.UpdateAt("a", 7, at)
	want = vclock.Entry{Count: 7, Insert: us(epoch), Time: us(at)}
	if got := mustGet(t, c, "a"); got != want {
		t.Fatalf("UpdateAt existing: %+v, want %+v", got, want)
	}
	c.UpdateAt("b", 1, at)
	want = vclock.Entry{Count: 1, Insert: us(ft.Now()), Time: us(at)}
	if got := mustGet(t, c, "b"); got != want {
		t.Fatalf("UpdateAt new: %+v, want %+v (Insert is now)", got, want)
	}
}

// Times outside [epoch, year 294247] are clamped so every clock encodes to
// input its decoders accept.
func TestUpdateAtClampsTimes(t *testing.T) {
	c := vclock.New()
	c.UpdateAt("past", 1, time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC))
	c.UpdateAt("future", 1, time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC))
	if got := mustGet(t, c, "past").Time; got != 0 {
		t.Errorf("pre-epoch time = %d, want 0", got)
	}
	if got := mustGet(t, c, "future").Time; got != math.MaxInt64 {
		t.Errorf("far-future time = %d, want MaxInt64", got)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, vclock.New()); err != nil {
		t.Fatalf("clamped clock does not decode: %v", err)
	}
}

// Remove of absent and present entries.
func TestRemove(t *testing.T) {
	c := vclock.New()
	c.Remove("a")
	if c.Size() != 0 {
		t.Fatalf("size %d after removing an absent id", c.Size())
	}
	c.Insert("a")
	c.Insert("b")
	c.Remove("a")
	if c.Has("a") || !c.Has("b") || c.Size() != 1 {
		t.Fatalf("after Remove(a): %v", c.Nodes())
	}
}

// Increment creates at 1, then counts up, stamping Time.
func TestIncrement(t *testing.T) {
	ft := newFakeTime()
	c := vclock.NewWithClock(ft.Now)
	if n := c.Increment("a"); n != 1 {
		t.Fatalf("first Increment = %d, want 1", n)
	}
	ft.Advance(time.Second)
	if n := c.Increment("a"); n != 2 {
		t.Fatalf("second Increment = %d, want 2", n)
	}
	want := vclock.Entry{Count: 2, Insert: us(epoch), Time: us(epoch.Add(time.Second))}
	if got := mustGet(t, c, "a"); got != want {
		t.Fatalf("entry %+v, want %+v", got, want)
	}
}

// Increment saturates instead of wrapping to 0, which would make the clock
// look older than it is.
func TestIncrementSaturates(t *testing.T) {
	c := vclock.New()
	c.Update("a", math.MaxUint64)
	if n := c.Increment("a"); n != math.MaxUint64 {
		t.Fatalf("Increment at max = %d, want MaxUint64", n)
	}
}

// Empty ids are ignored by every mutator: decoders reject them, so a clock
// holding one could not be encoded and decoded back.
func TestEmptyIDIgnored(t *testing.T) {
	c := vclock.New()
	c.Insert("")
	c.Update("", 1)
	c.UpdateAt("", 1, epoch)
	if n := c.Increment(""); n != 0 {
		t.Errorf("Increment(\"\") = %d, want 0", n)
	}
	if c.Size() != 0 {
		t.Fatalf("size %d, want 0", c.Size())
	}
}

// Get, Count, Insert and Time of an entry, Has.
func TestAccessors(t *testing.T) {
	ft := newFakeTime()
	c := vclock.NewWithClock(ft.Now)
	c.Insert("a")
	ft.Advance(time.Minute)
	c.Increment("a")
	c.Increment("a")

	e, ok := c.Get("a")
	if !ok || e != (vclock.Entry{Count: 2, Insert: us(epoch), Time: us(epoch.Add(time.Minute))}) {
		t.Errorf("Get(a) = %+v, %v", e, ok)
	}
	if _, ok := c.Get("b"); ok {
		t.Error("Get(b) found an absent id")
	}
	if c.Count("a") != 2 || c.Count("b") != 0 {
		t.Errorf("Count(a), Count(b) = %d, %d; want 2, 0", c.Count("a"), c.Count("b"))
	}
	if e.Insert != us(epoch) {
		t.Errorf("Insert = %d, want %d", e.Insert, us(epoch))
	}
	if e.Time != us(epoch.Add(time.Minute)) {
		t.Errorf("Time = %d, want %d", e.Time, us(epoch.Add(time.Minute)))
	}
	if !c.Has("a") || c.Has("b") {
		t.Errorf("Has(a), Has(b) = %v, %v", c.Has("a"), c.Has("b"))
	}
}

// Nodes lists the ids, sorted.
func TestNodes(t *testing.T) {
	c := vclock.New()
	for _, id := range []string{"c", "a", "b"} {
		c.Insert(id)
	}
	if got, want := c.Nodes(), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("Nodes = %v, want %v", got, want)
	}
	var ids []string
	for id := range c.All() {
		ids = append(ids, id)
		break // early exit must be honoured
	}
	if !slices.Equal(ids, []string{"a"}) {
		t.Fatalf("All with break yielded %v", ids)
	}
}

func TestCloneIsDeep(t *testing.T) {
	c := vclock.New()
	c.Increment("a")
	d := c.Clone()
	d.Increment("a")
	d.Increment("b")
	if c.Count("a") != 1 || c.Has("b") {
		t.Fatalf("Clone aliased the original: %v", c)
	}
	if !c.Equal(c.Clone()) {
		t.Fatal("Clone not Equal to its original")
	}
}

func TestString(t *testing.T) {
	c := vclock.New()
	if got := c.String(); got != "{}" {
		t.Errorf("empty String = %q", got)
	}
	c.Update("b", 1)
	c.Update("a", 2)
	if got, want := c.String(), "{a:2 b:1}"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestOrderString(t *testing.T) {
	for o, want := range map[vclock.Order]string{
		vclock.Before: "Before", vclock.Equal: "Equal", vclock.After: "After",
		vclock.Concurrent: "Concurrent", 0: "Order(0)",
	} {
		if got := o.String(); got != want {
			t.Errorf("Order(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}

var errSentinel = vclock.ErrInvalidClock

func TestErrorsArePrefixed(t *testing.T) {
	for _, err := range []error{errSentinel, vclock.ErrInvalidTrimOptions} {
		if msg := err.Error(); len(msg) < 8 || msg[:8] != "vclock: " {
			t.Errorf("error %q lacks the package prefix", msg)
		}
	}
	err := json.Unmarshal([]byte(`[]`), vclock.New())
	if !errors.Is(err, vclock.ErrInvalidClock) {
		t.Errorf("decode error %v does not wrap ErrInvalidClock", err)
	}
}

// keys returns the sorted keys of m, for messages.
func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
