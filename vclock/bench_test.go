package vclock_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/notp-go/notp/vclock"
	"github.com/vmihailenco/msgpack/v5"
)

// benchClock returns a clock of n entries with distinct counts.
func benchClock(n, offset int) *vclock.Clock {
	c := vclock.New()
	for i := range n {
		c.UpdateAt(fmt.Sprintf("node-%03d", i), uint64(i+offset), epoch.Add(time.Duration(i)*time.Second))
	}
	return c
}

func BenchmarkIncrement(b *testing.B) {
	c := benchClock(10, 0)
	for b.Loop() {
		c.Increment("node-005")
	}
}

func BenchmarkMerge(b *testing.B) {
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			x, y := benchClock(n, 0), benchClock(n, 1)
			for b.Loop() {
				x.Merge(y)
			}
		})
	}
}

func BenchmarkDescends(b *testing.B) {
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			x, y := benchClock(n, 1), benchClock(n, 0)
			for b.Loop() {
				if !x.Descends(y) {
					b.Fatal("want descends")
				}
			}
		})
	}
}

func BenchmarkCompare(b *testing.B) {
	x, y := benchClock(10, 1), benchClock(10, 0)
	for b.Loop() {
		_ = x.Compare(y)
	}
}

func BenchmarkMsgpackEncode(b *testing.B) {
	c := benchClock(10, 0)
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	for b.Loop() {
		buf.Reset()
		if err := enc.Encode(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMsgpackDecode(b *testing.B) {
	data, err := msgpack.Marshal(benchClock(10, 0))
	if err != nil {
		b.Fatal(err)
	}
	c := vclock.New()
	for b.Loop() {
		if err := msgpack.Unmarshal(data, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONDecode(b *testing.B) {
	data, err := benchClock(10, 0).MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	c := vclock.New()
	for b.Loop() {
		if err := c.UnmarshalJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}
