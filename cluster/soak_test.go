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
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
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

// The soak's nodes: n0..n2 are the stable ring, n3 and n4 the churners,
// each on its own address, reused by every cycle so the ring's tombstones
// stay bounded however long the soak runs.
const soakStable, soakChurners = 3, 2

func TestChurnSoak(t *testing.T) {
	dur := 3 * time.Second
	if *soakFor > 0 {
		dur = *soakFor
	}
	clustertest.CheckLeaks(t)
	cfg := mildFaults(soakStable, 7)
	cfg.Configure = func(i int, c *cluster.Config) {
		if i >= soakStable {
			c.Gossip.FlushPath = "" // a churner joins afresh each cycle
		}
	}
	c := startAgreed(t, cfg)
	for range soakChurners {
		c.Stop(c.Add())
	}

	var baseline, peak uint64
	start := time.Now()
	cycles := 0
	for ; cycles < 2 || time.Since(start) < dur; cycles++ {
		churnCycle(t, c, soakStable+cycles%soakChurners, cycles)
		if cycles == 0 {
			baseline = heapAfterGC()
		} else if cycles%8 == 0 {
			peak = max(peak, heapAfterGC())
		}
	}
	final := heapAfterGC()
	peak = max(peak, final)
	t.Logf("%d churn cycles in %v; heap after GC: %d KiB after the first cycle, %d KiB at the end, %d KiB peak",
		cycles, time.Since(start).Round(time.Millisecond), baseline>>10, final>>10, peak>>10)
	// What one cycle leaves behind (a tombstone, a clock entry) is tiny;
	// a leak of nodes, links or sessions shows as megabytes a minute.
	if limit := 2*baseline + 16<<20; final > limit {
		t.Fatalf("heap grew from %d KiB to %d KiB over %d cycles (limit %d KiB)", baseline>>10, final>>10, cycles, limit>>10)
	}
	clustertest.WaitFor(t, "the stable ring intact", func() bool { return agree(c.Nodes()[:soakStable], five[:soakStable]...) })
}

// churnCycle runs one cycle: churner j starts afresh and joins, links are
// dropped and re-made, the network splits and heals, and j goes (by
// Leave, or stopped and removed by a member, alternately).
func churnCycle(t *testing.T, c *clustertest.Cluster, j, i int) {
	t.Helper()
	// One ctx per cycle, not ctxT's, whose cleanups would pile up.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stable := c.Nodes()[:soakStable]
	a, b := stable[0], stable[1]
	c.RestartAt(j, 0)
	jn := c.Node(j)
	id := jn.Self().ID
	defer c.Stop(j)
	if err := b.Ring().Meet(ctx, jn.Self()); err != nil {
		t.Fatalf("cycle %d: meet %s: %v", i, id, err)
	}
	all := append(slices.Clone(stable), jn)
	ids := append(slices.Clone(five[:soakStable]), id)
	clustertest.WaitFor(t, fmt.Sprintf("cycle %d: %s in every ring", i, id), func() bool { return agree(all, ids...) })

	// Drop a link gracefully or not and make it again; the ring must not
	// notice beyond a reconnect.
	if err := a.Kernel().Disconnect(ctx, "n1", i%2 == 0); err != nil {
		t.Fatalf("cycle %d: disconnect: %v", i, err)
	}
	if err := a.Kernel().Connect(b.Self()); err != nil {
		t.Fatalf("cycle %d: connect: %v", i, err)
	}
	// Split n2 off, change the ring on the majority side, heal.
	c.Partition([]int{2}, []int{0, 1, j})
	w := 1 + i%5
	if err := a.Ring().Update(ctx, jn.Self(), w, false); err != nil {
		t.Fatalf("cycle %d: update: %v", i, err)
	}
	c.Heal()
	clustertest.WaitFor(t, fmt.Sprintf("cycle %d: the weight of %s everywhere", i, id), func() bool {
		if !agree(all, ids...) {
			return false
		}
		return !slices.ContainsFunc(all, func(n *cluster.Node) bool { return n.Ring().View().Weights()[id] != w })
	})

	if i%2 == 0 {
		if err := jn.Leave(ctx, false); err != nil {
			t.Fatalf("cycle %d: leave: %v", i, err)
		}
		c.Stop(j)
	} else {
		c.Stop(j)
		if err := stable[2].Ring().Remove(ctx, jn.Self(), true); err != nil {
			t.Fatalf("cycle %d: remove: %v", i, err)
		}
	}
	clustertest.WaitFor(t, fmt.Sprintf("cycle %d: %s gone", i, id), func() bool { return agree(stable, five[:soakStable]...) })
}
