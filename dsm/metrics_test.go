package dsm_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/dsm"
	"github.com/notp-go/notp/kernel"
)

// A DSM's series appear on its node's /metrics once it starts and move
// with the semaphores it owns, the places taken and given up, and the
// hand-offs a ring change causes; they disappear when it stops.
func TestMetricsScrape(t *testing.T) {
	cc := clustertest.Config{Nodes: 3, Configure: func(_ int, cfg *cluster.Config) { cfg.MetricsAddr = "127.0.0.1:0" }}
	ds := clustertest.Run(&cc, func(c *clustertest.Cluster, i int) (*dsm.DSM, error) {
		return dsm.New(c.Node(i), dsm.Config{Retries: dsm.NoRetries, HandoffInterval: 100 * time.Millisecond, Logger: clustertest.Logger(t)})
	})
	c := clustertest.Start(t, cc)
	ctx := clustertest.Context(t, 20*time.Second)
	d := ds.At(0)
	name := map[string]string{"name": "dsm"}
	result := func(r string) map[string]string { return map[string]string{"name": "dsm", "result": r} }
	sum := func(series string, labels map[string]string, nodes ...int) float64 {
		var s float64
		for _, i := range nodes {
			s += clustertest.Scrape(t, c.Node(i)).MustValue(t, series, labels)
		}
		return s
	}

	// Ten semaphores of one place, each holding h1, spread over the
	// owners the ring gives them; the last is one node 2 owns, so that
	// removing node 2 moves at least one.
	const sems = 10
	ids := make([]string, 0, sems)
	for i := range sems - 1 {
		ids = append(ids, fmt.Sprintf("s%d", i))
	}
	for i := 0; len(ids) < sems; i++ {
		if i == 10000 {
			t.Fatal("the ring gives node 2 no ID")
		}
		if o, _ := c.Node(0).Ring().View().OwnerString(fmt.Sprintf("x%d", i)); o.ID == c.Node(2).Self().ID {
			ids = append(ids, fmt.Sprintf("x%d", i))
		}
	}
	for _, id := range ids {
		if err := d.Create(ctx, id, 1); err != nil {
			t.Fatal(err)
		}
		if err := d.Post(ctx, id, "h1", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	var pe *dsm.PostError
	if err := d.Post(ctx, "s0", "h2", time.Minute); !errors.As(err, &pe) {
		t.Fatalf("Post to a full semaphore: %v, want a *PostError", err)
	}
	var re *kernel.RemoteError
	if err := d.Post(ctx, "nope", "h1", time.Minute); !errors.As(err, &re) || re.Code != dsm.CodeNotFound {
		t.Fatalf("Post to a missing semaphore: %v, want CodeNotFound", err)
	}
	if err := d.Close(ctx, "s0", "h1"); err != nil {
		t.Fatal(err)
	}
	if err := d.CloseAsync("s1", "h1"); err != nil {
		t.Fatal(err)
	}
	all := []int{0, 1, 2}
	clustertest.WaitFor(t, "the async close", func() bool { return sum("notp_dsm_holders", name, all...) == sems-2 })
	m := clustertest.Scrape(t, c.Node(0))
	checks := []struct {
		series string
		labels map[string]string
		want   float64
	}{
		{"notp_dsm_posts_total", result("ok"), sems},
		{"notp_dsm_posts_total", result("full"), 1},
		{"notp_dsm_posts_total", result("failed"), 1},
		{"notp_dsm_closes_total", name, 2},
	}
	for _, ck := range checks {
		if got := m.MustValue(t, ck.series, ck.labels); got != ck.want {
			t.Errorf("%s%v = %v, want %v", ck.series, ck.labels, got, ck.want)
		}
	}
	if got := sum("notp_dsm_semaphores", name, all...); got != sems {
		t.Errorf("semaphores owned over the nodes = %v, want %d", got, sems)
	}

	// Removing node 2 from the ring hands its semaphores to the others.
	moved := clustertest.Scrape(t, c.Node(2)).MustValue(t, "notp_dsm_semaphores", name)
	if moved == 0 {
		t.Fatalf("node 2 owns no semaphore, though %s is its", ids[sems-1])
	}
	if err := c.Node(0).Ring().Remove(ctx, c.Node(2).Self(), false); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, "node 2's semaphores handed off", func() bool {
		return sum("notp_dsm_semaphores", name, 0, 1) == sems && sum("notp_dsm_semaphores", name, 2) == 0
	})
	if got := sum("notp_dsm_handoffs_total", result("sent"), 2); got < moved {
		t.Errorf("node 2 handed off %v semaphores, want >= %v", got, moved)
	}
	if got := sum("notp_dsm_handoffs_received_total", name, 0, 1); got < moved {
		t.Errorf("nodes 0 and 1 received %v semaphores, want >= %v", got, moved)
	}
	if got := sum("notp_dsm_holders", name, 0, 1); got != sems-2 {
		t.Errorf("holders after the hand-off = %v, want %d", got, sems-2)
	}
	t.Logf("node 2's dsm series:\n%s", clustertest.Scrape(t, c.Node(2)).Text("notp_dsm_"))

	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := clustertest.Scrape(t, c.Node(0)).Value("notp_dsm_semaphores", name); ok {
		t.Error("a stopped DSM's series are still reported")
	}
}
