package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/kernel"
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

	// a's own calls and casts, which its kernel counters and call
	// histogram count.
	var sunk atomic.Int64
	bk := b.Kernel()
	if err := bk.Register("kecho", kernel.HandlerFunc(func(m kernel.Message) { bk.Reply(m.From, m.Data) })); err != nil {
		t.Fatal(err)
	}
	if err := bk.Register("ksink", kernel.HandlerFunc(func(kernel.Message) { sunk.Add(1) })); err != nil {
		t.Fatal(err)
	}

	addr := a.MetricsAddr()
	if addr == nil {
		t.Fatal("MetricsAddr after Start is nil")
	}
	before := clustertest.Scrape(t, a)
	const kcalls, kcasts = 7, 4
	for range kcalls {
		if _, err := a.Kernel().Call(ctxT(t), b.Self(), "kecho", []byte("hi")); err != nil {
			t.Fatal(err)
		}
	}
	for range kcasts {
		if err := a.Kernel().Cast(b.Self(), "ksink", nil); err != nil {
			t.Fatal(err)
		}
	}
	clustertest.WaitFor(t, "a's casts received", func() bool { return sunk.Load() == kcasts })
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
		"notp_kernel_calls_total":              dto.MetricType_COUNTER,
		"notp_kernel_casts_total":              dto.MetricType_COUNTER,
		"notp_kernel_call_duration_seconds":    dto.MetricType_HISTOGRAM,
		"notp_gossip_ring_nodes":               dto.MetricType_GAUGE,
		"notp_gossip_ring_tokens":              dto.MetricType_GAUGE,
		"notp_gossip_ring_info":                dto.MetricType_GAUGE,
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
		{"notp_kernel_calls_total", nil, kcalls},
		{"notp_kernel_casts_total", nil, kcasts},
		{"notp_kernel_call_duration_seconds", nil, kcalls}, // its sample count
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
	checkCallDuration(t, after)
	if got := after.MustValue(t, "notp_gossip_ring_nodes", nil); got != 2 {
		t.Errorf("ring nodes %v, want 2", got)
	}
	if got, want := after.MustValue(t, "notp_gossip_ring_tokens", nil), float64(a.Ring().View().Size()); got != want || got < 2 {
		t.Errorf("ring tokens %v, want %v, at least one per node", got, want)
	}
	if id, sum := ringInfo(t, after); id != "ring" || sum == "" {
		t.Errorf("ring info: ring_id %q checksum %q", id, sum)
	}
	// The memberlist series are this node's: a met b, so a's transport
	// has at least one stream, and every stream of a's (all with b, in
	// this process) is counted again on b's side of the process totals.
	mlStreams := after.MustValue(t, "notp_memberlist_streams_accepted_total", nil) +
		after.MustValue(t, "notp_memberlist_streams_dialed_total", nil)
	own, tot := a.Ring().TransportStats(), gossip.TransportTotals()
	if mlStreams < 1 || mlStreams > float64(own.StreamsIn+own.StreamsOut) || 2*mlStreams > float64(tot.StreamsIn+tot.StreamsOut) {
		t.Errorf("memberlist streams %v: node's own %+v, process totals %+v", mlStreams, own, tot)
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

// checkCallDuration checks the call-latency histogram of the scrape after
// against the one before: a well-formed cumulative histogram in seconds
// whose samples grew with the calls made in between, with a plausible sum.
func checkCallDuration(t *testing.T, after clustertest.Metrics) {
	t.Helper()
	const name = "notp_kernel_call_duration_seconds"
	mf := after[name]
	if len(mf.GetMetric()) != 1 {
		t.Fatalf("%s: %d series, want 1", name, len(mf.GetMetric()))
	}
	h := mf.GetMetric()[0].GetHistogram()
	var prevBound float64
	var prevCum uint64
	for i, bk := range h.GetBucket() {
		if b := bk.GetUpperBound(); b <= prevBound {
			t.Errorf("%s: bucket %d bound %v after %v", name, i, b, prevBound)
		}
		if c := bk.GetCumulativeCount(); c < prevCum || c > h.GetSampleCount() {
			t.Errorf("%s: bucket le=%v holds %d, after %d, of %d samples", name, bk.GetUpperBound(), c, prevCum, h.GetSampleCount())
		}
		prevBound, prevCum = bk.GetUpperBound(), bk.GetCumulativeCount()
	}
	if len(h.GetBucket()) == 0 {
		t.Errorf("%s has no buckets", name)
	}
	calls := after.MustValue(t, "notp_kernel_calls_total", nil)
	if n := float64(h.GetSampleCount()); n < 1 || n > calls {
		t.Errorf("%s: %v samples, %v calls made", name, n, calls)
	}
	// Calls on loopback: each took more than nothing and far less than a
	// second on average.
	if sum, n := h.GetSampleSum(), float64(h.GetSampleCount()); sum <= 0 || sum/n >= 1 {
		t.Errorf("%s: sum %vs over %v samples", name, sum, n)
	}
}

// ringInfo returns the ring_id and checksum labels of the scrape's one
// notp_gossip_ring_info series, failing t unless there is exactly one,
// of value 1.
func ringInfo(t *testing.T, m clustertest.Metrics) (ringID, checksum string) {
	t.Helper()
	ms := m["notp_gossip_ring_info"].GetMetric()
	if len(ms) != 1 || ms[0].GetGauge().GetValue() != 1 {
		t.Fatalf("notp_gossip_ring_info: %v, want one series of value 1", m.Text("notp_gossip_ring_info"))
	}
	for _, l := range ms[0].GetLabel() {
		switch l.GetName() {
		case "ring_id":
			ringID = l.GetValue()
		case "checksum":
			checksum = l.GetValue()
		}
	}
	return ringID, checksum
}

// ringAgreement scrapes every node of c and reports whether they all
// show ring "ring" of want nodes with one checksum and one token count,
// and that checksum.
func ringAgreement(t *testing.T, c *clustertest.Cluster, want int) (checksum string, ok bool) {
	t.Helper()
	var tokens float64
	for i, n := range c.Nodes() {
		m := clustertest.Scrape(t, n)
		id, sum := ringInfo(t, m)
		nodes := m.MustValue(t, "notp_gossip_ring_nodes", nil)
		tok := m.MustValue(t, "notp_gossip_ring_tokens", nil)
		if i == 0 {
			checksum, tokens = sum, tok
		}
		if id != "ring" || nodes != float64(want) || sum != checksum || tok != tokens {
			return "", false
		}
	}
	return checksum, true
}

// The ring series show convergence: once the nodes converged each one
// reports the same ring id, checksum, node count and token count, the
// checksum being the one its ring's anti-entropy sends. A node met later
// changes the checksum, and every node reports the new one once it
// converged again.
func TestMetricsRingConvergence(t *testing.T) {
	c := clustertest.Start(t, clustertest.Config{Nodes: 3, Configure: func(_ int, cfg *cluster.Config) {
		cfg.MetricsAddr = "127.0.0.1:0"
	}})
	var sum3 string
	clustertest.WaitFor(t, "three nodes reporting one ring", func() bool {
		var ok bool
		sum3, ok = ringAgreement(t, c, 3)
		return ok
	})
	for _, n := range c.Nodes() {
		if got := fmt.Sprintf("%016x", n.Ring().Checksum()); got != sum3 {
			t.Errorf("%s: ring checksum %s, the scrapes reported %s", n.Self().ID, got, sum3)
		}
		if got, want := clustertest.Scrape(t, n).MustValue(t, "notp_gossip_ring_tokens", nil), float64(n.Ring().View().Size()); got != want {
			t.Errorf("%s: ring tokens %v, its view holds %v", n.Self().ID, got, want)
		}
	}

	i := c.Add()
	if _, sum := ringInfo(t, clustertest.Scrape(t, c.Node(i))); sum == sum3 {
		t.Errorf("a node alone reports the three-node ring's checksum %s", sum)
	}
	if err := c.Node(0).Ring().Meet(ctxT(t), c.Node(i).Self()); err != nil {
		t.Fatal(err)
	}
	var sum4 string
	clustertest.WaitFor(t, "four nodes reporting one ring", func() bool {
		var ok bool
		sum4, ok = ringAgreement(t, c, 4)
		return ok
	})
	if sum4 == sum3 {
		t.Errorf("the ring's checksum %s did not change with a fourth node", sum4)
	}
}
