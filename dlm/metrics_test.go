package dlm_test

import (
	"context"
	"testing"
	"time"

	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/dlm"
)

// A DLM's series appear on its node's /metrics once it starts and move with
// the locks it takes, is refused and releases, and with its replica's
// holds; they disappear when it stops.
func TestMetricsScrape(t *testing.T) {
	withMetrics := func(_ int, cfg *cluster.Config) { cfg.MetricsAddr = "127.0.0.1:0" }
	c, ds := form(t, clustertest.Config{Nodes: 3, Configure: withMetrics},
		dlm.Config{Retries: 1, MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond}, false)
	ctx := clustertest.Context(t, 20*time.Second)
	d := ds.At(0)
	const ttl = 10 * time.Second
	if _, err := d.WLock(ctx, "a", "h1", ttl); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WLock(ctx, "a", "h2", ttl); err == nil {
		t.Fatal("a second holder took the write lock")
	}
	if _, err := d.RLock(ctx, "b", "h3", ttl); err != nil {
		t.Fatal(err)
	}
	// Replicas answer a lock once a quorum granted it; the third may
	// still be granting, so the sums are at least a quorum.
	sum := func(name string) float64 {
		var s float64
		for _, n := range c.Nodes() {
			s += clustertest.Scrape(t, n).MustValue(t, name, map[string]string{"name": "dlm"})
		}
		return s
	}
	if got := sum("notp_dlm_replica_locks"); got < 4 {
		t.Errorf("replica locks over the nodes = %v, want >= 4 (a and b on a quorum each)", got)
	}
	if got := sum("notp_dlm_tokens_recorded_total"); got < 2 {
		t.Errorf("fencing tokens recorded over the nodes = %v, want >= 2", got)
	}
	if err := d.RUnlock(ctx, "b", "h3"); err != nil {
		t.Fatal(err)
	}
	if err := d.WUnlock(ctx, "a", "h1"); err != nil {
		t.Fatal(err)
	}

	m := clustertest.Scrape(t, c.Node(0))
	t.Logf("node 0's dlm series:\n%s", m.Text("notp_dlm_"))
	with := func(k, v string) map[string]string { return map[string]string{"name": "dlm", k: v} }
	name := map[string]string{"name": "dlm"}
	checks := []struct {
		series string
		labels map[string]string
		want   float64
	}{
		{"notp_dlm_locks_granted_total", with("mode", "write"), 1},
		{"notp_dlm_locks_granted_total", with("mode", "read"), 1},
		{"notp_dlm_locks_refused_total", with("mode", "write"), 1},
		{"notp_dlm_locks_refused_total", with("mode", "read"), 0},
		{"notp_dlm_locks_released_total", with("mode", "write"), 1},
		{"notp_dlm_locks_released_total", with("mode", "read"), 1},
		{"notp_dlm_attempts_total", name, 4}, // 1 + 2 (one retry) + 1
		{"notp_dlm_retries_total", name, 1},
		{"notp_dlm_quorum_failures_total", name, 2},
	}
	for _, ck := range checks {
		if got := m.MustValue(t, ck.series, ck.labels); got != ck.want {
			t.Errorf("%s%v = %v, want %v", ck.series, ck.labels, got, ck.want)
		}
	}
	if st := d.Stats(); st.WLocksGranted != 1 || st.Attempts != 4 {
		t.Errorf("Stats = %+v, want the scraped values", st)
	}
	clustertest.WaitFor(t, "every replica to release", func() bool { return sum("notp_dlm_replica_locks") == 0 })

	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := clustertest.Scrape(t, c.Node(0)).Value("notp_dlm_attempts_total", name); ok {
		t.Error("a stopped DLM's series are still reported")
	}
}
