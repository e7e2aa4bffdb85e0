package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/conflux"
	"github.com/notp-go/notp/dlm"
	"github.com/notp-go/notp/dsm"
)

// Every family the module exports follows Prometheus' naming rules, as
// promlint checks them (counters end in _total, units are base units
// spelled out, help is present, ...): the kernel's, the ring's,
// memberlist's transport's, the actors', the collector's own, and those
// conflux, dlm and dsm register as sources, gathered from one node that
// runs all three.
func TestMetricNamesLint(t *testing.T) {
	c := clustertest.Start(t, clustertest.Config{Nodes: 1})
	n := c.Node(0)
	ctx := clustertest.Context(t, 30*time.Second)

	store, err := conflux.New(n, conflux.Config[int, int]{
		Name:   "counter",
		Reduce: func(s, d int) int { return s + d },
		Methods: map[string]conflux.Method[int, int]{
			"add": func(_ int, args []byte) (int, error) {
				var d int
				err := msgpack.Unmarshal(args, &d)
				return d, err
			},
		},
		BootstrapExpect:  1,
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Stop(context.Background()) })
	if _, err := store.Perform(ctx, "add", 1); err != nil {
		t.Fatal(err)
	}

	locks, err := dlm.New(n, dlm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := locks.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = locks.Stop(context.Background()) })
	if _, err := locks.WLock(ctx, "l", "h", time.Minute); err != nil {
		t.Fatal(err)
	}

	sems, err := dsm.New(n, dsm.Config{Retries: dsm.NoRetries})
	if err != nil {
		t.Fatal(err)
	}
	if err := sems.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sems.Stop(context.Background()) })
	if err := sems.Create(ctx, "s", 1); err != nil {
		t.Fatal(err)
	}
	if err := sems.Post(ctx, "s", "h", time.Minute); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	mfs := gatherIn(t, reg, n.Metrics())
	for _, p := range []string{"notp_kernel_", "notp_gossip_", "notp_memberlist_", "notp_genserver_", "notp_metrics_",
		"notp_conflux_", "notp_dlm_", "notp_dsm_"} {
		found := false
		for name := range mfs {
			found = found || strings.HasPrefix(name, p)
		}
		if !found {
			t.Errorf("no %s* family to lint", p)
		}
	}
	all, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(all).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	t.Logf("%d families linted", len(all))
}
