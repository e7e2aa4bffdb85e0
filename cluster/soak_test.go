package cluster_test

// The churn soak: nodes join and leave a three-node ring over and over,
// links are dropped and re-made, and the network is split and healed,
// while the test watches for leaked goroutines and a growing heap.
//
// CI runs it for a few seconds. For a long run pass -soak with a duration:
//
//	go test -race -run TestChurnSoak -timeout 15m ./cluster/ -soak=10m
//
// (-soak goes after the package: it is the test binary's flag, not go test's).

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/internal/faultnet"
)

var soakFor = flag.Duration("soak", 0, "run TestChurnSoak for this long (e.g. 10m) instead of its short CI run")

// heapAfterGC returns the live heap after a full collection.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func TestChurnSoak(t *testing.T) {
	dur := 3 * time.Second
	if *soakFor > 0 {
		dur = *soakFor
	}
	goroutines := runtime.NumGoroutine()
	fn := newFaultNet(t, 7)
	stable := []*faultNode{startFault(t, fn, "a"), startFault(t, fn, "b"), startFault(t, fn, "c")}
	a, b, c := stable[0], stable[1], stable[2]
	for _, f := range stable[1:] {
		if err := a.n.Ring().Meet(ctxT(t), f.n.Self()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three-node ring", func() bool { return agree(nodesOf(stable), "a", "b", "c") })
	// Two churners, each on its own address, reused by every cycle so the
	// ring's tombstones stay bounded however long the soak runs.
	var churnHosts []*faultnet.Host
	for range 2 {
		h, err := fn.Host(faultnet.Loopback(int(nextHost.Add(1))))
		if err != nil {
			t.Fatal(err)
		}
		churnHosts = append(churnHosts, h)
	}

	var baseline, peak uint64
	start := time.Now()
	cycles := 0
	for ; cycles < 2 || time.Since(start) < dur; cycles++ {
		churnCycle(t, fn, stable, churnHosts[cycles%2], cycles)
		if cycles == 0 {
			baseline = heapAfterGC()
		} else if cycles%8 == 0 {
			peak = max(peak, heapAfterGC())
		}
	}
	final := heapAfterGC()
	peak = max(peak, final)
	t.Logf("%d churn cycles in %v; heap after GC: %d KiB after the first cycle, %d KiB at the end, %d KiB peak; network %+v",
		cycles, time.Since(start).Round(time.Millisecond), baseline>>10, final>>10, peak>>10, fn.Stats())
	// What one cycle leaves behind (a tombstone, a clock entry) is tiny;
	// a leak of nodes, links or sessions shows as megabytes a minute.
	if limit := 2*baseline + 16<<20; final > limit {
		t.Fatalf("heap grew from %d KiB to %d KiB over %d cycles (limit %d KiB)", baseline>>10, final>>10, cycles, limit>>10)
	}
	waitFor(t, "the stable ring intact", func() bool { return agree(nodesOf(stable), "a", "b", "c") })

	for _, f := range []*faultNode{a, b, c} {
		if err := f.n.Stop(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	fn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after the soak, %d before:\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// churnCycle runs one cycle: a node joins on h, links are dropped and
// re-made, the network splits and heals, and the node goes (by Leave, or
// stopped and removed by a member, alternately).
func churnCycle(t *testing.T, fn *faultnet.Network, stable []*faultNode, h *faultnet.Host, i int) {
	t.Helper()
	// One ctx per cycle, not ctxT's, whose cleanups would pile up.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b, c := stable[0], stable[1], stable[2]
	// Not stopped by a t.Cleanup: a long soak would keep every node ever
	// started reachable and blur the heap check.
	j := &faultNode{id: fmt.Sprintf("j%d", i%2), h: h}
	j.n = j.build(t, 0)
	defer j.n.Stop(context.Background())
	if err := j.n.Start(ctx, "ring"); err != nil {
		t.Fatalf("cycle %d: start %s: %v", i, j.id, err)
	}
	if err := b.n.Ring().Meet(ctx, j.n.Self()); err != nil {
		t.Fatalf("cycle %d: meet %s: %v", i, j.id, err)
	}
	all := append(nodesOf(stable), j.n)
	waitFor(t, fmt.Sprintf("cycle %d: %s in every ring", i, j.id), func() bool { return agree(all, "a", "b", "c", j.id) })

	// Drop a link gracefully or not and make it again; the ring must not
	// notice beyond a reconnect.
	if err := a.n.Kernel().Disconnect(ctx, "b", i%2 == 0); err != nil {
		t.Fatalf("cycle %d: disconnect: %v", i, err)
	}
	if err := a.n.Kernel().Connect(b.n.Self()); err != nil {
		t.Fatalf("cycle %d: connect: %v", i, err)
	}
	// Split c off, change the ring on the majority side, heal.
	fn.Partition([]netip.Addr{c.h.Addr()}, []netip.Addr{a.h.Addr(), b.h.Addr(), h.Addr()})
	w := 1 + i%5
	if err := a.n.Ring().Update(ctx, j.n.Self(), w, false); err != nil {
		t.Fatalf("cycle %d: update: %v", i, err)
	}
	fn.Heal()
	waitFor(t, fmt.Sprintf("cycle %d: the weight of %s everywhere", i, j.id), func() bool {
		if !agree(all, "a", "b", "c", j.id) {
			return false
		}
		return !slices.ContainsFunc(all, func(n *cluster.Node) bool { return n.Ring().View().Weights()[j.id] != w })
	})

	if i%2 == 0 {
		if err := j.n.Leave(ctx, false); err != nil {
			t.Fatalf("cycle %d: leave: %v", i, err)
		}
		if err := j.n.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	} else {
		if err := j.n.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.n.Ring().Remove(ctx, j.n.Self(), true); err != nil {
			t.Fatalf("cycle %d: remove: %v", i, err)
		}
	}
	waitFor(t, fmt.Sprintf("cycle %d: %s gone", i, j.id), func() bool { return agree(nodesOf(stable), "a", "b", "c") })
}
