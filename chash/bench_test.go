package chash

import (
	"fmt"
	"testing"

	"github.com/notp-go/notp"
)

// benchKeys are 4096 pre-built keys; benchmarks rotate through them so the
// lookups touch the whole ring rather than one cached bucket.
var benchKeys = func() [][]byte {
	keys := make([][]byte, 4096)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "user:%08d:session", i*7919)
	}
	return keys
}()

var benchShapes = []struct{ members, weight int }{
	{8, 64}, {64, 64}, {512, 64}, {8, 3}, {64, 3}, {512, 3},
	{8, DefaultRFactor}, {64, DefaultRFactor}, {512, DefaultRFactor},
}

func benchRing(members, weight int) *Ring {
	r := New(weight, 2)
	for i := range members {
		r.Insert(notp.Node{ID: fmt.Sprintf("node-%03d", i), Host: "10.0.0.1", Port: 7000 + i}, 0)
	}
	return r
}

var sinkNode notp.Node

func BenchmarkOwner(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("members=%d/weight=%d", s.members, s.weight), func(b *testing.B) {
			r := benchRing(s.members, s.weight)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sinkNode, _ = r.Owner(benchKeys[i&4095])
				i++
			}
		})
	}
}

func BenchmarkOwnerString(b *testing.B) {
	r := benchRing(64, 64)
	keys := make([]string, len(benchKeys))
	for i, k := range benchKeys {
		keys[i] = string(k)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sinkNode, _ = r.OwnerString(keys[i&4095])
		i++
	}
}

func BenchmarkAppendRangeNext(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("members=%d/weight=%d", s.members, s.weight), func(b *testing.B) {
			r := benchRing(s.members, s.weight)
			buf := make([]notp.Node, 0, 3)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				buf = r.AppendRangeNext(buf[:0], benchKeys[i&4095], 3)
				i++
			}
			if len(buf) != 3 {
				b.Fatal("short list")
			}
		})
	}
}

// BenchmarkInsert measures a write: a node joining a 64×64 ring (tree insert
// plus snapshot rebuild), then leaving.
func BenchmarkInsert(b *testing.B) {
	r := benchRing(64, 64)
	n := notp.Node{ID: "joiner", Host: "10.0.0.2", Port: 7022}
	b.ReportAllocs()
	for b.Loop() {
		r.Insert(n, 0)
		r.Remove(n.ID)
	}
}

func BenchmarkMarshalJSON(b *testing.B) {
	r := benchRing(64, 64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOwnerParallel shows that lookups from many goroutines do not
// contend: they share an immutable snapshot and take no lock.
func BenchmarkOwnerParallel(b *testing.B) {
	r := benchRing(64, 64)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			n, _ := r.Owner(benchKeys[i&4095])
			if n.ID == "" {
				b.Error("no owner")
				return
			}
			i++
		}
	})
}
