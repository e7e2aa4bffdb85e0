package dlm_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/dlm"
)

// Lock+unlock on a three-node in-process cluster over loopback TCP, each
// lock replicated on all three nodes (WLock is two round trips to the
// replicas: grant, then the fencing token's record). "disk" replicas fsync
// every grant, release and token before answering; "memory" ones do not.
func BenchmarkLockUnlock(b *testing.B) {
	for _, memory := range []bool{true, false} {
		name := "disk"
		if memory {
			name = "memory"
		}
		b.Run(name, func(b *testing.B) {
			_, ds := form(b, clustertest.Config{Nodes: 3}, dlm.Config{Replicas: 3}, memory)
			all := []*dlm.DLM{ds.At(0), ds.At(1), ds.At(2)}
			d := all[0]
			ctx := context.Background()
			b.Run("uncontended-wlock", func(b *testing.B) {
				for b.Loop() {
					if _, err := d.WLock(ctx, "bench", "me", 10*time.Second); err != nil {
						b.Fatal(err)
					}
					if err := d.WUnlock(ctx, "bench", "me"); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("uncontended-rlock", func(b *testing.B) {
				for b.Loop() {
					if _, err := d.RLock(ctx, "bench", "me", 10*time.Second); err != nil {
						b.Fatal(err)
					}
					if err := d.RUnlock(ctx, "bench", "me"); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("parallel-wlock-many-ids", func(b *testing.B) {
				var seq atomic.Int64
				b.SetParallelism(8)
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					w := seq.Add(1)
					i := 0
					for pb.Next() {
						id := fmt.Sprintf("id-%d-%d", w, i%64)
						i++
						nd := all[i%3]
						if _, err := nd.WLock(ctx, id, "me", 10*time.Second); err != nil {
							b.Error(err)
							return
						}
						if err := nd.WUnlock(ctx, id, "me"); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pairs/s")
			})
		})
	}
}
