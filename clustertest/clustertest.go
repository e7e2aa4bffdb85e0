package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/internal/faultnet"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/internal/testutil/mltest"
	"github.com/notp-go/notp/kernel"
)

// MaxNodes bounds Config.Nodes: every node runs in the test's process
// with its own sockets and goroutines.
const MaxNodes = 64

// WaitTimeout is how long Start waits for the nodes to converge and
// WaitFor polls before failing the test.
const WaitTimeout = testutil.WaitTimeout

// ErrNotConverged is wrapped by WaitConverged's error when ctx ends
// before the running nodes agree.
var ErrNotConverged = errors.New("clustertest: nodes did not converge")

// Config says what cluster Start builds. The zero value of each field
// but Nodes selects its default.
type Config struct {
	// Nodes is how many nodes to start, 1..MaxNodes. They are named
	// "n0".."n{Nodes-1}" and index i is node "n{i}".
	Nodes int
	// RingID is the ring the nodes form; "" = "ring".
	RingID string
	// Faults runs every node on its own loopback address (127.0.0.x) of
	// a fault-injecting network, so that Partition, Block and Heal can
	// cut them apart. Without it the nodes share 127.0.0.1 and nothing
	// is cut.
	Faults bool
	// Seed seeds the dice of the datagram faults; runs with the same
	// seed lose, duplicate and reorder at the same rates.
	Seed uint64
	// Loss, Duplicate and Reorder are the chances (0..1) that a
	// failure-detector datagram is dropped, sent twice or held back so
	// later ones overtake it. They need Faults; 0 = never.
	Loss, Duplicate, Reorder float64
	// Blackhole makes a dial across a partition or block wait until its
	// context ends or the cut heals, as behind a firewall that drops
	// packets, instead of being refused at once as by a closed port. It
	// needs Faults.
	Blackhole bool
	// Configure, if set, adjusts node i's configuration after the
	// defaults are filled in and before cluster.New (on Start and on
	// every Restart). It must keep Node.ID and Cookie (the test fails
	// otherwise).
	Configure func(i int, c *cluster.Config)
	// OnStart, if set, runs on the test's goroutine each time node i has
	// started (on Start, Restart, RestartAt and Add), before Start has
	// node 0 meet the others: a test starts the service under test on
	// the node here ([Run] does). ctx ends after WaitTimeout; an error
	// fails the test.
	OnStart func(ctx context.Context, c *Cluster, i int) error
	// OnStop, if set, runs each time before node i stops (on Stop,
	// Restart, RestartAt and at the test's cleanup), so a service on it
	// stops first. ctx ends after WaitTimeout; an error fails the test
	// once the node has stopped.
	OnStop func(ctx context.Context, c *Cluster, i int) error
}

func (c Config) validate() error {
	if c.Nodes < 1 || c.Nodes > MaxNodes {
		return fmt.Errorf("clustertest: Nodes = %d, want 1..%d", c.Nodes, MaxNodes)
	}
	if !c.Faults && (c.Loss != 0 || c.Duplicate != 0 || c.Reorder != 0 || c.Blackhole) {
		return errors.New("clustertest: datagram faults and Blackhole need Faults")
	}
	return nil
}

// Cluster is a set of nodes in one process, stopped at the test's
// cleanup. Its methods are meant for the test's goroutine; Nodes, Node,
// Dir and Cookie are safe for concurrent use.
type Cluster struct {
	t      testing.TB
	cfg    Config
	cookie string
	log    *slog.Logger
	fn     *faultnet.Network // nil without Faults
	dir    string            // the flush files and the nodes' directories

	mu    sync.Mutex
	nodes []*member
}

// member is node i of the cluster across restarts.
type member struct {
	id      string
	host    *faultnet.Host // nil without Faults
	port    int            // the port it last listened on; 0 before its first start
	n       *cluster.Node
	running bool
}

// hostSeq spreads the clusters of one test binary over 127.0.0.2..254, so
// that a node restarted at its old port rarely meets another test's
// socket.
var hostSeq atomic.Uint32

// Start starts cfg.Nodes nodes, has node 0 meet the others and waits
// until they converge (see WaitConverged), failing t if any step fails.
// The nodes are stopped, and the fault-injecting network closed, at t's
// cleanup.
func Start(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.RingID == "" {
		cfg.RingID = "ring"
	}
	c := &Cluster{t: t, cfg: cfg, cookie: NewCookie(t), log: testutil.Logger(t), dir: t.TempDir()}
	t.Cleanup(c.stopAll)
	if cfg.Faults {
		c.startNetwork()
	}
	for range cfg.Nodes {
		c.start(c.newMember(), 0)
	}
	c.meetAll()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	if err := c.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *Cluster) startNetwork() {
	c.fn = faultnet.New(c.cfg.Seed)
	err := c.fn.SetPacketFaults(faultnet.PacketFaults{Loss: c.cfg.Loss, Duplicate: c.cfg.Duplicate, Reorder: c.cfg.Reorder})
	if err != nil {
		c.t.Fatalf("clustertest: %v", err)
	}
	if c.cfg.Blackhole {
		c.fn.SetStreamMode(faultnet.Blackhole)
	}
}

func (c *Cluster) hostFor(m *member) {
	h, err := c.fn.Host(faultnet.Loopback(2 + int(hostSeq.Add(1)%253)))
	if err != nil {
		c.t.Fatalf("clustertest: %v", err)
	}
	m.host = h
}

// newMember adds the next node (not started yet) and returns its index.
func (c *Cluster) newMember() int {
	c.t.Helper()
	c.mu.Lock()
	i := len(c.nodes)
	c.mu.Unlock()
	if i >= MaxNodes {
		c.t.Fatalf("clustertest: a node %d is past MaxNodes (%d)", i, MaxNodes)
	}
	m := &member{id: fmt.Sprintf("n%d", i)}
	if c.fn != nil {
		c.hostFor(m)
	}
	if err := os.Mkdir(filepath.Join(c.dir, m.id), 0o700); err != nil {
		c.t.Fatalf("clustertest: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes = append(c.nodes, m)
	return i
}

// Add starts one more node, the next index (returned), alone in its own
// ring with the cluster's ring id: have a node meet it
// (Node(0).Ring().Meet) to join it to the others, then WaitConverged.
// Until then WaitConverged reports the cluster split. Past MaxNodes
// nodes it fails the test.
func (c *Cluster) Add() int {
	c.t.Helper()
	i := c.newMember()
	c.start(i, 0)
	return i
}

// meetAll has node 0 meet every other node.
func (c *Cluster) meetAll() {
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	first := c.Node(0)
	for _, n := range c.Nodes()[1:] {
		if err := first.Ring().Meet(ctx, n.Self()); err != nil {
			c.t.Fatalf("clustertest: %s meets %s: %v", first.Self().ID, n.Self().ID, err)
		}
	}
}

// config is node i's configuration at port.
func (c *Cluster) config(i, port int) cluster.Config {
	m := c.nodes[i]
	cfg := cluster.Config{
		Node:   notp.Node{ID: m.id, Host: "127.0.0.1", Port: port},
		Cookie: c.cookie,
		Gossip: gossip.Config{
			FlushPath:     filepath.Join(c.dir, m.id+".ring"),
			FlushInterval: 20 * time.Millisecond,
			Interval:      100 * time.Millisecond,
			Memberlist:    FastMemberlist(),
			// A dead member is retried within a second or two, so a
			// healed partition or a restarted node shows quickly.
			Reconnect: gossip.ReconnectConfig{First: 300 * time.Millisecond, Interval: 2 * time.Second},
		},
		// A broken link is redialled within 200 ms instead of waiting
		// out a backoff grown to seconds while it was cut.
		Kernel: kernel.Config{ReconnectMax: 200 * time.Millisecond},
		Logger: c.log.With("node", m.id),
	}
	if m.host != nil {
		cfg.Node.Host = m.host.Addr().String()
		cfg.Kernel.Listen, cfg.Kernel.Dial = m.host.Listen, m.host.Dial
		cfg.Gossip.ListenPacket = m.host.ListenPacket
	}
	if c.cfg.Configure != nil {
		c.cfg.Configure(i, &cfg)
		if cfg.Node.ID != m.id || cfg.Cookie != c.cookie {
			c.t.Fatalf("clustertest: Configure changed node %d's ID or cookie", i)
		}
	}
	return cfg
}

// start builds and starts node i at port (0 = any free port).
func (c *Cluster) start(i, port int) {
	c.t.Helper()
	n, err := cluster.New(c.config(i, port))
	if err != nil {
		c.t.Fatalf("clustertest: node %d: %v", i, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	if err := n.Start(ctx, c.cfg.RingID); err != nil {
		c.t.Fatalf("clustertest: start node %d: %v", i, err)
	}
	c.mu.Lock()
	m := c.nodes[i]
	m.n, m.running, m.port = n, true, n.Self().Port
	c.mu.Unlock()
	if c.cfg.OnStart != nil {
		if err := c.cfg.OnStart(ctx, c, i); err != nil {
			c.t.Fatalf("clustertest: node %d's OnStart: %v", i, err)
		}
	}
}

// member returns node i, failing the test if there is none.
func (c *Cluster) member(i int) *member {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.nodes) {
		c.t.Fatalf("clustertest: no node %d (of %d)", i, len(c.nodes))
	}
	return c.nodes[i]
}

// Dir returns node i's own directory, kept across its restarts and
// removed at the test's end: a service under test keeps its files there.
func (c *Cluster) Dir(i int) string {
	c.t.Helper()
	return filepath.Join(c.dir, c.member(i).id)
}

// Cookie is the cluster's secret: 32 random bytes in hex, generated by
// Start. A client kernel (an operator's, say) needs it to talk to the
// nodes.
func (c *Cluster) Cookie() string { return c.cookie }

// Node returns node i: the running node, or its last instance if Stop
// stopped it. A Restart replaces it, so do not keep it across one.
func (c *Cluster) Node(i int) *cluster.Node {
	c.t.Helper()
	return c.member(i).n
}

// Nodes returns every node in index order, as Node does.
func (c *Cluster) Nodes() []*cluster.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*cluster.Node, len(c.nodes))
	for i, m := range c.nodes {
		out[i] = m.n
	}
	return out
}

// running returns the nodes not stopped.
func (c *Cluster) running() []*cluster.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*cluster.Node
	for _, m := range c.nodes {
		if m.running {
			out = append(out, m.n)
		}
	}
	return out
}

// WaitConverged waits until the running nodes agree: every ring holds
// the same nodes with the same tokens and ring id, every running node is
// in it, and every running node's failure detector sees every other
// running node alive. Stopped nodes are left out (they may stay in the
// ring, dead). When ctx ends first it returns an error wrapping
// ErrNotConverged and ctx's error, saying what still disagrees.
func (c *Cluster) WaitConverged(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		why := disagreement(c.running())
		if why == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: %w", ErrNotConverged, why, ctx.Err())
		case <-t.C:
		}
	}
}

// disagreement says why ns have not converged, or "" if they have.
func disagreement(ns []*cluster.Node) string {
	if len(ns) == 0 {
		return ""
	}
	first := ns[0].Ring()
	for _, n := range ns {
		r, id := n.Ring(), n.Self().ID
		if r.RingID() != first.RingID() {
			return fmt.Sprintf("%s is in ring %q, %s in %q", id, r.RingID(), ns[0].Self().ID, first.RingID())
		}
		if !r.View().Equal(first.View()) {
			return fmt.Sprintf("%s's ring %v differs from %s's %v", id, nodeIDs(r.View()), ns[0].Self().ID, nodeIDs(first.View()))
		}
		if _, ok := first.View().Get(id); !ok {
			return fmt.Sprintf("%s is not in the ring %v", id, nodeIDs(first.View()))
		}
		for _, o := range ns {
			if h := r.Health(o.Self().ID); h != gossip.HealthAlive {
				return fmt.Sprintf("%s sees %s %v", id, o.Self().ID, h)
			}
		}
	}
	return ""
}

func nodeIDs(v gossip.View) []string {
	var ids []string
	for _, n := range v.Nodes() {
		ids = append(ids, n.ID)
	}
	slices.Sort(ids)
	return ids
}

// Stop stops node i gracefully (its ring state is flushed to its flush
// file) and waits for it, failing the test if it fails. Its peers see it
// dead until Restart. Stopping a stopped node does nothing.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	n, running := c.markStopped(c.member(i))
	if !running {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	if err := c.stop(ctx, i, n); err != nil {
		c.t.Fatal(err)
	}
}

// markStopped marks m stopped, returning its node and whether it ran.
func (c *Cluster) markStopped(m *member) (*cluster.Node, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	running := m.running
	m.running = false
	return m.n, running
}

// stop runs OnStop for node i, then stops n (even if OnStop failed).
func (c *Cluster) stop(ctx context.Context, i int, n *cluster.Node) error {
	var hook error
	if c.cfg.OnStop != nil {
		if err := c.cfg.OnStop(ctx, c, i); err != nil {
			hook = fmt.Errorf("clustertest: node %d's OnStop: %w", i, err)
		}
	}
	if err := n.Stop(ctx); err != nil {
		return errors.Join(hook, fmt.Errorf("clustertest: stop node %d: %w", i, err))
	}
	return hook
}

// Restart stops node i if it runs and starts it again on the same
// address and port from its flush file, so it rejoins the ring it was
// in. Call WaitConverged to wait for the others to see it alive.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.restart(i, c.member(i).port)
}

// RestartAt is Restart at port; 0 picks a new free port, so peers must
// learn the node's new address from the ring.
func (c *Cluster) RestartAt(i, port int) {
	c.t.Helper()
	c.restart(i, port)
}

func (c *Cluster) restart(i, port int) {
	c.t.Helper()
	c.Stop(i)
	c.start(i, port)
}

// Move stops node i if it runs and starts it again from its flush file at
// a new address of the fault-injecting network and a new free port, as a
// rescheduled container comes back: peers must learn where it went from
// the ring and the failure detector. It needs Config.Faults.
func (c *Cluster) Move(i int) {
	c.t.Helper()
	c.needFaults("Move")
	m := c.member(i)
	c.Stop(i)
	c.hostFor(m)
	c.start(i, 0)
}

// Partition splits the nodes into groups of node indices: a node can
// reach only nodes of its own group (datagrams are dropped, connections
// across groups cut and new ones refused). Nodes in no group can reach
// everyone. It needs Config.Faults.
func (c *Cluster) Partition(groups ...[]int) {
	c.t.Helper()
	c.needFaults("Partition")
	addrs := make([][]netip.Addr, len(groups))
	for g, ids := range groups {
		for _, i := range ids {
			addrs[g] = append(addrs[g], c.addr(i))
		}
	}
	c.fn.Partition(addrs...)
}

// Block stops what node from sends to node to (one direction only;
// connections between them need both and are cut). It needs
// Config.Faults.
func (c *Cluster) Block(from, to int) {
	c.t.Helper()
	c.fn.Block(c.addr(from), c.addr(to))
}

// Unblock lifts what Block(from, to) or a Partition put between node
// from and node to, in that direction only. It needs Config.Faults.
func (c *Cluster) Unblock(from, to int) {
	c.t.Helper()
	c.fn.Unblock(c.addr(from), c.addr(to))
}

// Heal lifts every partition and block. It needs Config.Faults.
func (c *Cluster) Heal() {
	c.t.Helper()
	c.needFaults("Heal")
	c.fn.Heal()
}

// addr is node i's address on the fault-injecting network.
func (c *Cluster) addr(i int) netip.Addr {
	c.t.Helper()
	c.needFaults("cutting nodes apart")
	return c.member(i).host.Addr()
}

func (c *Cluster) needFaults(what string) {
	c.t.Helper()
	if c.fn == nil {
		c.t.Fatalf("clustertest: %s needs Config.Faults", what)
	}
}

// stopAll stops the running nodes and closes the network, at cleanup.
func (c *Cluster) stopAll() {
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	c.mu.Lock()
	nodes := slices.Clone(c.nodes)
	c.mu.Unlock()
	for i, m := range nodes {
		n, running := c.markStopped(m)
		if !running {
			continue
		}
		if err := c.stop(ctx, i, n); err != nil {
			c.t.Errorf("at cleanup: %v", err)
		}
	}
	if c.fn != nil {
		if err := c.fn.Close(); err != nil {
			c.t.Errorf("clustertest: close the network: %v", err)
		}
	}
}

// NewCookie returns a strong random cookie (32 bytes of crypto/rand, in
// hex) for a test's nodes and clients.
func NewCookie(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("clustertest: cookie: %v", err)
	}
	return hex.EncodeToString(b)
}

// StartKernel builds and starts a kernel from cfg, outside any ring (an
// operator's client, say, or a bare node for a protocol on the kernel's
// mux), failing t if it cannot. A nil cfg.Logger logs to t's output, as
// [Logger] does. The kernel is closed at t's cleanup.
func StartKernel(t testing.TB, cfg kernel.Config) *kernel.Kernel {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = Logger(t)
	}
	k, err := kernel.New(cfg)
	if err != nil {
		t.Fatalf("clustertest: kernel %s: %v", cfg.Node.ID, err)
	}
	t.Cleanup(func() { k.Close() })
	if err := k.Start(context.Background()); err != nil {
		t.Fatalf("clustertest: start kernel %s: %v", cfg.Node.ID, err)
	}
	return k
}

// WaitFor polls cond every few milliseconds until it holds, failing t
// (naming what) if it does not within WaitTimeout.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, what, cond)
}

// CheckLeaks fails t if goroutines started after this call still run,
// 10 s after t's later cleanups. Call it first in the test (before
// Start), so that its check runs after the nodes are stopped; tests
// calling it must not run in parallel.
func CheckLeaks(t testing.TB) {
	t.Helper()
	testutil.CheckLeaks(t)
}

// FastMemberlist returns a memberlist config for nodes on loopback in
// one test process: a stopped node is seen failed within a second or
// two, live nodes are not suspected on a loaded machine. Start's nodes
// use it; set it in gossip.Config.Memberlist for nodes built by hand.
func FastMemberlist() *memberlist.Config { return mltest.FastConfig() }

// Logger returns a logger writing to t.Output(): debug and up when the
// tests run with -v, warnings and errors otherwise. Start's nodes log
// to it, each line carrying its node's id.
func Logger(t testing.TB) *slog.Logger { return testutil.Logger(t) }

// Context returns a context that ends after d, or when t's test ends if
// that is sooner: the time budget of a test's calls to the nodes.
func Context(t testing.TB, d time.Duration) context.Context { return testutil.Context(t, d) }
