package conflux

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/notp-go/notp/conflux/internal/logentry"
)

// benchGroup starts a 3-node in-memory group whose method dispatches its
// argument as the action (as bench's confluxbench does) and returns the
// leader's store.
func benchGroup(b *testing.B) *Store[int, []byte] {
	b.Helper()
	var nodes = make([]*Store[int, []byte], 0, 3)
	var leader *Store[int, []byte]
	for i := range 3 {
		nd := startNode(b, fmt.Sprintf("b%d", i), nil)
		if i > 0 {
			meet(b, nodes[0].ring.n, nd)
		}
		s, err := New(nd, Config[int, []byte]{
			Name:   "bench",
			Reduce: func(n int, _ []byte) int { return n + 1 },
			Methods: map[string]Method[int, []byte]{
				"put": func(_ int, args []byte) ([]byte, error) { return args, nil },
			},
			BootstrapExpect: 3,
			Logger:          slog.New(slog.DiscardHandler),
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Start(ctxT(b)); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Stop(context.Background()) })
		nodes = append(nodes, s)
	}
	waitFor(b, "a leader", func() bool {
		for _, s := range nodes {
			if r, err := s.running(); err == nil && r.State().String() == "Leader" {
				leader = s
				return true
			}
		}
		return false
	})
	return leader
}

// BenchmarkPerform measures Perform on the leader of a 3-node in-memory
// group with 128-byte actions, one performer at a time (serial) and many
// at once (parallel); allocs/op counts the whole group's allocations per
// committed action, replication and apply on all three nodes included.
func BenchmarkPerform(b *testing.B) {
	args := make([]byte, 128)
	b.Run("serial", func(b *testing.B) {
		l := benchGroup(b)
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := l.Perform(ctx, "put", args); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		l := benchGroup(b)
		b.ReportAllocs()
		b.SetParallelism(32) // 64 performers on 2 cores
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if _, err := l.Perform(ctx, "put", args); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkEntryCodec measures encoding a proposal's log entry and
// decoding it as the FSM does.
func BenchmarkEntryCodec(b *testing.B) {
	action := make([]byte, 128)
	b.ReportAllocs()
	for b.Loop() {
		data, err := encodeEntry(&entry{P: 1}, action)
		if err != nil {
			b.Fatal(err)
		}
		var e entry
		if err := logentry.Decode(data, &e); err != nil {
			b.Fatal(err)
		}
	}
}
