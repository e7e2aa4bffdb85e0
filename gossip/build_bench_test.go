package gossip

import (
	"context"
	"fmt"
	"testing"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/kernel"
)

// BenchmarkMInsert inserts 200 nodes of weight 2048 with one MInsert on a
// started ring outside any ring (no network traffic), so it measures the
// state change and the publication of the new hash ring.
func BenchmarkMInsert(b *testing.B) {
	const members, weight = 200, 2048
	nodes := make([]notp.Node, members)
	for i := range nodes {
		nodes[i] = notp.Node{ID: fmt.Sprintf("m%04d", i), Host: "10.0.0.1", Port: 7000 + i}
	}
	k, err := kernel.New(kernel.Config{Node: notp.Node{ID: "bench", Host: "127.0.0.1"}, Insecure: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := k.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		r, err := New(k, Config{LazyConnect: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Start(context.Background(), ""); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := r.MInsert(context.Background(), nodes, weight, false); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if got := len(r.View().Nodes()); got != members+1 {
			b.Fatalf("ring has %d nodes, want %d", got, members+1)
		}
		_ = r.Stop(context.Background())
		b.StartTimer()
	}
}

// TestMInsertPublishesOnce: inserting 200 nodes of weight 1024 at once
// allocates a few token tables, not one per inserted node (a clone and an
// Insert per node made it quadratic: about 750 MB here).
func TestMInsertPublishesOnce(t *testing.T) {
	const members, weight = 200, 1024
	nodes := make([]notp.Node, members)
	for i := range nodes {
		nodes[i] = notp.Node{ID: fmt.Sprintf("m%04d", i), Host: "10.0.0.1", Port: 7000 + i}
	}
	n := newNode(t, "a", func(c *Config) { c.LazyConnect = true }).start("")
	var err error
	alloc := testutil.Allocated(func() { err = n.r.MInsert(ctx(t), nodes, weight, false) })
	if err != nil {
		t.Fatal(err)
	}
	if got := len(n.r.View().Nodes()); got != members+1 {
		t.Fatalf("ring has %d nodes, want %d", got, members+1)
	}
	const limit = 100 << 20
	if got := alloc; got > limit {
		t.Fatalf("MInsert allocated %d MB, want at most %d MB", got>>20, limit>>20)
	}
}
