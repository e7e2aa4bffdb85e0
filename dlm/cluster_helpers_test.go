package dlm_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/dlm"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/internal/faultnet"
	"github.com/notp-go/notp/kernel"
)

const testCookie = "dlm-test-cookie-0123456789"

// nextHost gives every node of this package's tests its own loopback
// address on the fault-injecting network.
var nextHost atomic.Int32

func init() { nextHost.Store(100) }

func logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
}

// fastMemberlist notices a stopped node within a second or two on a
// loaded machine without suspecting live ones.
func fastMemberlist() *memberlist.Config {
	c := memberlist.DefaultLocalConfig()
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 150 * time.Millisecond
	c.GossipInterval = 50 * time.Millisecond
	c.PushPullInterval = 500 * time.Millisecond
	c.SuspicionMult = 3
	c.TCPTimeout = time.Second
	c.LogOutput = io.Discard
	return c
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or 20 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// node is a cluster node with its DLM on a faultnet host; start builds it
// anew on the same address, port, ring file and DLM directory.
type node struct {
	id   string
	h    *faultnet.Host
	dir  string
	port int
	cfg  dlm.Config
	n    *cluster.Node
	d    *dlm.DLM
	cur  atomic.Pointer[dlm.DLM] // d, for goroutines that outlive a restart
	// memory runs the DLM without a directory.
	memory bool
}

func newNode(t testing.TB, fn *faultnet.Network, id string, cfg dlm.Config, memory bool) *node {
	t.Helper()
	h, err := fn.Host(faultnet.Loopback(int(nextHost.Add(1))))
	if err != nil {
		t.Fatal(err)
	}
	nd := &node{id: id, h: h, dir: t.TempDir(), cfg: cfg, memory: memory}
	nd.start(t)
	return nd
}

func (nd *node) start(t testing.TB) {
	t.Helper()
	n, err := cluster.New(cluster.Config{
		Node:   notp.Node{ID: nd.id, Host: nd.h.Addr().String(), Port: nd.port},
		Cookie: testCookie,
		Gossip: gossip.Config{
			FlushPath:     filepath.Join(nd.dir, "ring"),
			FlushInterval: 20 * time.Millisecond,
			Interval:      100 * time.Millisecond,
			Memberlist:    fastMemberlist(),
			Reconnect:     gossip.ReconnectConfig{First: 300 * time.Millisecond, Interval: 2 * time.Second},
			ListenPacket:  nd.h.ListenPacket,
		},
		Kernel: kernel.Config{Listen: nd.h.Listen, Dial: nd.h.Dial, ReconnectMax: 200 * time.Millisecond},
		Logger: logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	if err := n.Start(ctxT(t, 15*time.Second), "ring"); err != nil {
		t.Fatalf("start %s: %v", nd.id, err)
	}
	nd.port = n.Self().Port
	cfg := nd.cfg
	if !nd.memory {
		cfg.Dir = filepath.Join(nd.dir, "dlm")
	}
	cfg.Logger = logger(t)
	d, err := dlm.New(n, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	nd.n, nd.d = n, d
	nd.cur.Store(d)
}

// stop stops the DLM and the node, as a crash would: every grant was on
// disk before it was answered.
func (nd *node) stop(t testing.TB) {
	t.Helper()
	if err := nd.d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := nd.n.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func alive(n *cluster.Node, want int) bool {
	ms := n.Ring().Members()
	if len(ms) != want {
		return false
	}
	for _, m := range ms {
		if m.Health != gossip.HealthAlive {
			return false
		}
	}
	return true
}

// form starts a ring of the given ids and waits until all agree and see
// each other alive.
func form(t testing.TB, fn *faultnet.Network, cfg dlm.Config, ids ...string) []*node {
	t.Helper()
	return formOn(t, fn, cfg, false, ids...)
}

// formOn is form with the DLMs in memory when memory is set.
func formOn(t testing.TB, fn *faultnet.Network, cfg dlm.Config, memory bool, ids ...string) []*node {
	t.Helper()
	var ns []*node
	for _, id := range ids {
		ns = append(ns, newNode(t, fn, id, cfg, memory))
	}
	for _, nd := range ns[1:] {
		if err := ns[0].n.Ring().Meet(ctxT(t, 15*time.Second), nd.n.Self()); err != nil {
			t.Fatalf("meet %s: %v", nd.id, err)
		}
	}
	for _, nd := range ns {
		waitFor(t, "ring and health on "+nd.id, func() bool {
			return nd.n.Ring().View().NumberNodes() == len(ns) && alive(nd.n, len(ns))
		})
	}
	return ns
}
