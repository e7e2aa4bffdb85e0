package vclock_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/notp-go/notp/vclock"
)

// agedClock returns a clock whose entries were last updated ages[id] before
// epoch.
func agedClock(ages map[string]time.Duration) *vclock.Clock {
	c := vclock.New()
	for id, age := range ages {
		c.UpdateAt(id, 1, epoch.Add(-age))
	}
	return c
}

// opts builds TrimOptions with durations in milliseconds, like notp's tests.
func opts(lower int, young time.Duration, upper int, old time.Duration) vclock.TrimOptions {
	return vclock.TrimOptions{LowerBound: lower, YoungBound: young * time.Millisecond, UpperBound: upper, OldBound: old * time.Millisecond}
}

func TestTrim(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name        string
		ages        map[string]time.Duration
		opts        vclock.TrimOptions
		wantNodes   []string
		wantRemoved int
	}{
		// At or below LowerBound nothing happens.
		{"94 one entry, lower 2", map[string]time.Duration{"a": 100 * ms}, opts(2, 10, 0, 15), []string{"a"}, 0},
		{"94 at lower bound", map[string]time.Duration{"a": 100 * ms, "b": 100 * ms}, opts(2, 10, 0, 15), []string{"a", "b"}, 0},
		// The oldest entry is not older than YoungBound.
		{"95 both aged 5, young 10", map[string]time.Duration{"a": 5 * ms, "b": 5 * ms}, opts(1, 10, 0, 15), []string{"a", "b"}, 0},
		{"95 oldest exactly YoungBound", map[string]time.Duration{"a": 10 * ms, "b": 1 * ms}, opts(1, 10, 0, 0), []string{"a", "b"}, 0},
		// Remove the oldest while above UpperBound.
		{"96 ages 11 and 12, upper 1", map[string]time.Duration{"a": 11 * ms, "b": 12 * ms}, opts(1, 10, 1, 15), []string{"a"}, 1},
		// Remove entries older than OldBound.
		{"97 ages 11 and 16, old 15", map[string]time.Duration{"a": 11 * ms, "b": 16 * ms}, opts(1, 10, 2, 15), []string{"a"}, 1},
		{"97 stops at first survivor", map[string]time.Duration{"a": 20 * ms, "b": 12 * ms, "c": 30 * ms, "d": 1 * ms}, opts(1, 10, 3, 15), []string{"b", "d"}, 2},
		{"may go below LowerBound, to empty", map[string]time.Duration{"a": 20 * ms, "b": 30 * ms, "c": 40 * ms}, opts(2, 10, 5, 15), nil, 3},
		{"equal times trimmed in id order", map[string]time.Duration{"c": 20 * ms, "a": 20 * ms, "b": 20 * ms}, opts(1, 10, 1, 100), []string{"c"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := agedClock(tt.ages)
			if got := c.Trim(epoch, tt.opts); got != tt.wantRemoved {
				t.Errorf("removed %d, want %d", got, tt.wantRemoved)
			}
			if got := c.Nodes(); !slices.Equal(got, tt.wantNodes) && len(got)+len(tt.wantNodes) > 0 {
				t.Errorf("nodes %v, want %v", got, tt.wantNodes)
			}
		})
	}
}

func TestTrimDefaults(t *testing.T) {
	d := vclock.DefaultTrimOptions()
	want := vclock.TrimOptions{LowerBound: 10, YoungBound: 20 * time.Second, UpperBound: 50, OldBound: 24 * time.Hour}
	if d != want {
		t.Fatalf("DefaultTrimOptions = %+v, want %+v", d, want)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	// 60 entries, one per minute: size trims to 50, and none is a day old.
	c := vclock.New()
	for i := range 60 {
		c.UpdateAt(string(rune('A'+i)), 1, epoch.Add(-time.Duration(i+1)*time.Minute))
	}
	if n := c.Trim(epoch, d); n != 10 || c.Size() != 50 {
		t.Fatalf("removed %d, size %d; want 10, 50", n, c.Size())
	}
	if c.Has(string(rune('A'+59))) || !c.Has("A") {
		t.Fatal("Trim did not remove the oldest entries")
	}
	// Fresh entries are never trimmed, whatever the size: the gate opens only
	// once the oldest is strictly older than YoungBound.
	fresh := vclock.New()
	for i := range 60 {
		fresh.UpdateAt(string(rune('a'+i)), 1, epoch)
	}
	if n := fresh.Trim(epoch.Add(20*time.Second), d); n != 0 {
		t.Fatalf("trimmed %d entries aged exactly YoungBound", n)
	}
	if n := fresh.Trim(epoch.Add(20*time.Second+time.Microsecond), d); n != 10 {
		t.Fatalf("trimmed %d entries once past YoungBound, want 10", n)
	}
}

func TestTrimOptionsValidate(t *testing.T) {
	for _, o := range []vclock.TrimOptions{
		{LowerBound: -1}, {UpperBound: -1}, {YoungBound: -1}, {OldBound: -1},
	} {
		if err := o.Validate(); !errors.Is(err, vclock.ErrInvalidTrimOptions) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidTrimOptions", o, err)
		}
	}
	// Negative bounds act as zero.
	neg := agedClock(map[string]time.Duration{"a": time.Second, "b": -time.Second})
	zero := neg.Clone()
	neg.Trim(epoch, vclock.TrimOptions{LowerBound: -1, YoungBound: -time.Hour, UpperBound: -1, OldBound: -time.Hour})
	zero.Trim(epoch, vclock.TrimOptions{})
	if !neg.Equal(zero) {
		t.Fatalf("negative options %v differ from zero options %v", neg, zero)
	}
}
