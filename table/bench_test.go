package table

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
)

// In-memory table: Get and Set of 64-byte values over 10,000 keys.
func BenchmarkMemoryGet(b *testing.B) {
	tb := openT(b, Config{})
	keys := benchKeys(tb, 10000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := tb.Get(keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemorySet(b *testing.B) {
	tb := openT(b, Config{})
	keys := benchKeys(tb, 10000)
	val := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := tb.Set(keys[i%len(keys)], val); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryGetParallel(b *testing.B) {
	tb := openT(b, Config{})
	keys := benchKeys(tb, 10000)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if _, err := tb.Get(keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchKeys(tb *Table, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "key:" + strconv.Itoa(i)
		tb.Set(keys[i], make([]byte, 64))
	}
	return keys
}

// Durable SyncAlways writes with 1 and 64 writers; the bench module puts
// these beside bbolt.
func BenchmarkDurableSet(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			cfg := Config{Dir: b.TempDir(), Name: "bench"}
			tb := openT(b, cfg)
			val := make([]byte, 64)
			b.ResetTimer()
			var wg sync.WaitGroup
			per := (b.N + writers - 1) / writers
			for w := range writers {
				wg.Go(func() {
					for i := range per {
						if err := tb.Set(fmt.Sprintf("w%d:%d", w, i), val); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(per*writers)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}
