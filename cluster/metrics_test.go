package cluster_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/gossip"
)

// A node started with MetricsAddr serves Prometheus metrics that move with
// its traffic, and stops serving them when it stops.
func TestMetricsEndpoint(t *testing.T) {
	a, err := cluster.New(cluster.Config{
		Node: notp.Node{ID: "m1", Host: "127.0.0.1"}, Cookie: testCookie,
		Gossip:      gossip.Config{Interval: 100 * time.Millisecond, Memberlist: clustertest.FastMemberlist()},
		MetricsAddr: "127.0.0.1:0", Logger: clustertest.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	if a.MetricsAddr() != nil {
		t.Fatal("MetricsAddr before Start is not nil")
	}
	if err := a.Start(ctxT(t), "ring"); err != nil {
		t.Fatal(err)
	}
	b := startNode(t, nodeOpts{id: "m2"})
	if err := a.Ring().Meet(ctxT(t), b.Self()); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, "two-node ring", func() bool { return converged([]*cluster.Node{a, b}, "m1", "m2") && allAlive(a, 2) })

	echo, err := genserver.New(a.Kernel(), genserver.Config{Name: "echo", Logger: clustertest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	echo.Handle("echo", func(_ context.Context, r genserver.Request) ([]byte, error) { return r.Data, nil })
	if err := echo.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = echo.Stop(context.Background()) })
	if err := a.Metrics().Watch(echo); err != nil {
		t.Fatal(err)
	}

	addr := a.MetricsAddr()
	if addr == nil {
		t.Fatal("MetricsAddr after Start is nil")
	}
	before := clustertest.Scrape(t, a)
	const calls = 5
	for range calls {
		if _, err := genserver.CallRaw(ctxT(t), b.Kernel(), genserver.Target{Name: "echo", Node: a.Self()}, "echo", []byte("hi")); err != nil {
			t.Fatal(err)
		}
	}
	caster, err := genserver.New(b.Kernel(), genserver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := caster.Cast(genserver.Target{Name: "nobody", Node: a.Self()}, "x", nil); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, "the unknown cast counted", func() bool { return a.Kernel().Stats().CastsUnknownName > 0 })
	after := clustertest.Scrape(t, a)

	types := map[string]dto.MetricType{
		"notp_kernel_messages_received_total":  dto.MetricType_COUNTER,
		"notp_kernel_messages_sent_total":      dto.MetricType_COUNTER,
		"notp_kernel_received_bytes_total":     dto.MetricType_COUNTER,
		"notp_kernel_sent_bytes_total":         dto.MetricType_COUNTER,
		"notp_kernel_rejected_total":           dto.MetricType_COUNTER,
		"notp_kernel_calls_failed_total":       dto.MetricType_COUNTER,
		"notp_kernel_queue_drops_total":        dto.MetricType_COUNTER,
		"notp_kernel_casts_unknown_name_total": dto.MetricType_COUNTER,
		"notp_kernel_budget_pauses_total":      dto.MetricType_COUNTER,
		"notp_kernel_connections_active":       dto.MetricType_GAUGE,
		"notp_kernel_connections_pending":      dto.MetricType_GAUGE,
		"notp_gossip_members":                  dto.MetricType_GAUGE,
		"notp_gossip_ring_changes_total":       dto.MetricType_COUNTER,
		"notp_gossip_messages_sent_total":      dto.MetricType_COUNTER,
		"notp_gossip_reconnects_total":         dto.MetricType_COUNTER,
		"notp_gossip_entries_refused_total":    dto.MetricType_COUNTER,
		"notp_memberlist_packets_sent_total":   dto.MetricType_COUNTER,
		"notp_genserver_handled_total":         dto.MetricType_COUNTER,
		"notp_genserver_rejected_total":        dto.MetricType_COUNTER,
		"notp_genserver_mailbox_messages":      dto.MetricType_GAUGE,
		"go_goroutines":                        dto.MetricType_GAUGE,
	}
	for name, want := range types {
		mf, ok := after[name]
		if !ok {
			t.Errorf("no family %s", name)
			continue
		}
		if mf.GetType() != want {
			t.Errorf("%s: type %v, want %v", name, mf.GetType(), want)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
	}

	moved := []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"notp_kernel_messages_received_total", nil, calls + 1},
		{"notp_kernel_messages_sent_total", nil, calls},
		{"notp_kernel_received_bytes_total", nil, 1},
		{"notp_kernel_sent_bytes_total", nil, 1},
		{"notp_kernel_casts_unknown_name_total", nil, 1},
		{"notp_genserver_received_total", map[string]string{"actor": "echo"}, calls},
		{"notp_genserver_handled_total", map[string]string{"actor": "echo"}, calls},
	}
	for _, m := range moved {
		d := after.MustValue(t, m.name, m.labels) - before.MustValue(t, m.name, m.labels)
		if d < m.min {
			t.Errorf("%s%v moved by %v, want ≥ %v", m.name, m.labels, d, m.min)
		}
	}
	if got := after.MustValue(t, "notp_genserver_handled_total", map[string]string{"actor": "echo"}); got != calls {
		t.Errorf("echo handled %v, want %d", got, calls)
	}
	if got := after.MustValue(t, "notp_gossip_members", map[string]string{"health": "alive"}); got != 2 {
		t.Errorf("alive members %v, want 2", got)
	}
	if got := after.MustValue(t, "notp_gossip_members", map[string]string{"health": "dead"}); got != 0 {
		t.Errorf("dead members %v, want 0", got)
	}
	if got := after.MustValue(t, "notp_kernel_connections_active", nil); got < 1 {
		t.Errorf("active connections %v, want ≥ 1", got)
	}
	if got := after.MustValue(t, "notp_genserver_handled_total", map[string]string{"actor": "command"}); got != 0 {
		t.Errorf("command server handled %v, want 0", got)
	}

	if err := a.Stop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if a.MetricsAddr() != nil {
		t.Error("MetricsAddr after Stop is not nil")
	}
	if c, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
		c.Close()
		t.Fatal("metrics endpoint still accepts connections after Stop")
	}
}

// A bad MetricsAddr fails New; a taken one fails Start, which closes the
// node.
func TestMetricsAddrErrors(t *testing.T) {
	for _, addr := range []string{"9100", "127.0.0.1:http", "127.0.0.1:70000", "[::1:9100"} {
		_, err := cluster.New(cluster.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}, Cookie: testCookie, MetricsAddr: addr})
		if !errors.Is(err, cluster.ErrInvalidConfig) {
			t.Errorf("MetricsAddr %q: %v, want ErrInvalidConfig", addr, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n, err := cluster.New(cluster.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}, Cookie: testCookie,
		Gossip: gossip.Config{Memberlist: clustertest.FastMemberlist()}, MetricsAddr: ln.Addr().String(), Logger: clustertest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	if err := n.Start(ctxT(t), "ring"); err == nil {
		t.Fatal("Start with a taken metrics port succeeded")
	}
	if err := n.Start(ctxT(t), "ring"); !errors.Is(err, cluster.ErrClosed) {
		t.Fatalf("Start after a failed Start: %v, want ErrClosed", err)
	}
}
