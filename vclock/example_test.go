package vclock_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/notp-go/notp/vclock"
)

// Two replicas of a value accept writes during a partition. Their clocks
// say the writes are concurrent; after the application reconciles the
// values, merging the clocks gives a version that descends both.
func Example() {
	a := vclock.New()
	a.Increment("node-a")
	b := a.Clone() // replica b starts from the same version

	fmt.Println("start:", a.Compare(b))

	a.Increment("node-a") // a write on each side of the partition
	b.Increment("node-b")
	fmt.Println("a vs b:", a.Compare(b))

	a.Merge(b) // reconcile, then record the resolution as a new write
	a.Increment("node-a")
	fmt.Println("merged:", a, "vs b:", a.Compare(b), "descends b:", a.Descends(b))

	b.Merge(a) // b catches up
	fmt.Println("b caught up:", b.Compare(a))
	// Output:
	// start: Equal
	// a vs b: Concurrent
	// merged: {node-a:3 node-b:1} vs b: After descends b: true
	// b caught up: Equal
}

// Compare looks at counts; Equal also compares timestamps.
func ExampleClock_Equal() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := vclock.NewWithClock(func() time.Time { return now })
	b := vclock.NewWithClock(func() time.Time { return now.Add(time.Second) })
	a.Increment("x")
	b.Increment("x")
	fmt.Println(a.Compare(b), a.Equal(b))

	c := vclock.New()
	data, _ := json.Marshal(a)
	_ = json.Unmarshal(data, c)
	fmt.Println(c.Compare(a), c.Equal(a))
	// Output:
	// Equal false
	// Equal true
}

// Trim drops the oldest entries once the clock is both large and not fresh.
func ExampleClock_Trim() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	c := vclock.New()
	for i := range 12 {
		// actor-00 was updated 12 minutes ago, actor-11 a minute ago.
		c.UpdateAt(fmt.Sprintf("actor-%02d", i), 1, now.Add(-time.Duration(12-i)*time.Minute))
	}
	opts := vclock.TrimOptions{LowerBound: 4, YoungBound: 5 * time.Minute, UpperBound: 8, OldBound: time.Hour}
	fmt.Println("removed:", c.Trim(now, opts))
	fmt.Println("kept:", c.Nodes())
	// Output:
	// removed: 4
	// kept: [actor-04 actor-05 actor-06 actor-07 actor-08 actor-09 actor-10 actor-11]
}

func ExampleClock_MarshalJSON() {
	c := vclock.NewWithClock(func() time.Time { return time.UnixMicro(1700000000000000) })
	c.Increment("b")
	c.Insert("a")
	data, _ := json.Marshal(c)
	fmt.Println(string(data))
	// Output:
	// {"a":{"count":0,"insert":1700000000000000,"time":1700000000000000},"b":{"count":1,"insert":1700000000000000,"time":1700000000000000}}
}
