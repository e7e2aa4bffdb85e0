package conflux

import (
	"context"
	"errors"
	"testing"

	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
)

// A group's series appear on each node's /metrics once its store starts,
// move with Performs, Reads and snapshots, and disappear when it stops.
func TestMetricsScrape(t *testing.T) {
	c := clustertest.Start(t, clustertest.Config{Nodes: 3, Configure: func(_ int, cfg *cluster.Config) {
		cfg.MetricsAddr = "127.0.0.1:0"
	}})
	g := &group{t: t, nodes: c.Nodes()}
	for _, nd := range g.nodes {
		g.stores = append(g.stores, g.startStore(nd, counterConfig(t, nil, 3)))
	}
	li := g.leader()
	fi := (li + 1) % 3
	leader, follower := g.stores[li], g.stores[fi]
	grp := map[string]string{"group": "counter"}
	with := func(k, v string) map[string]string { return map[string]string{"group": "counter", k: v} }

	ctx := ctxT(t)
	for _, s := range []*Store[counter, int]{leader, follower} {
		if _, err := s.Perform(ctx, "add", 2); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := follower.Perform(ctx, "add", -100); !errors.Is(err, errNegative) {
		t.Fatalf("Perform add -100: %v, want errNegative", err)
	}
	if _, err := follower.Perform(ctx, "nope", 1); !errors.Is(err, ErrUnknownMethod) {
		t.Fatalf("Perform nope: %v, want ErrUnknownMethod", err)
	}
	if _, err := follower.Read(ctx, Linearizable); err != nil {
		t.Fatal(err)
	}
	if _, err := follower.Read(ctx, Stale); err != nil {
		t.Fatal(err)
	}
	if err := leader.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}

	lm := clustertest.Scrape(t, g.nodes[li])
	fm := clustertest.Scrape(t, g.nodes[fi])
	t.Logf("follower's conflux series:\n%s", fm.Text("notp_conflux_"))
	checks := []struct {
		m     clustertest.Metrics
		name  string
		label map[string]string
		want  float64
	}{
		{lm, "notp_conflux_state", with("state", "leader"), 1},
		{lm, "notp_conflux_state", with("state", "follower"), 0},
		{fm, "notp_conflux_state", with("state", "follower"), 1},
		{lm, "notp_conflux_voters", grp, 3},
		{lm, "notp_conflux_nonvoters", grp, 0},
		{lm, "notp_conflux_performs_total", with("outcome", "ok"), 1},
		{fm, "notp_conflux_performs_total", with("outcome", "ok"), 1},
		{fm, "notp_conflux_performs_total", with("outcome", "method_error"), 1},
		{fm, "notp_conflux_performs_total", with("outcome", "refused"), 1},
		{fm, "notp_conflux_performs_total", with("outcome", "unknown_outcome"), 0},
		{fm, "notp_conflux_perform_duration_seconds", grp, 3},
		{fm, "notp_conflux_reads_total", with("consistency", "linearizable"), 1},
		{fm, "notp_conflux_reads_total", with("consistency", "stale"), 1},
		{fm, "notp_conflux_reads_failed_total", with("consistency", "linearizable"), 0},
		{lm, "notp_conflux_snapshots_total", grp, 1},
		{fm, "notp_conflux_pending", grp, 0},
		{lm, "notp_metrics_source_panics_total", nil, 0},
		{lm, "notp_metrics_samples_dropped_total", nil, 0},
	}
	for _, ck := range checks {
		if got := ck.m.MustValue(t, ck.name, ck.label); got != ck.want {
			t.Errorf("%s%v = %v, want %v", ck.name, ck.label, got, ck.want)
		}
	}
	for _, name := range []string{"notp_conflux_term", "notp_conflux_leader_changes_total"} {
		if got := lm.MustValue(t, name, grp); got < 1 {
			t.Errorf("%s = %v, want >= 1", name, got)
		}
	}
	commit := lm.MustValue(t, "notp_conflux_commit_index", grp)
	if got := lm.MustValue(t, "notp_conflux_last_log_index", grp); got < commit {
		t.Errorf("last log index %v below the commit index %v", got, commit)
	}
	for _, name := range []string{"notp_conflux_applied_index", "notp_conflux_last_snapshot_index"} {
		if got := lm.MustValue(t, name, grp); got < 3 || got > commit {
			t.Errorf("%s = %v, want 3..commit index %v", name, got, commit)
		}
	}

	if err := follower.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := clustertest.Scrape(t, g.nodes[fi]).Value("notp_conflux_term", grp); ok {
		t.Error("a stopped store's series are still reported")
	}
}
