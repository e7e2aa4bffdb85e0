package cluster_test

// Multi-node tests of package cluster: real kernels, the real gossip ring
// and memberlist over loopback, with fast failure-detector settings. They
// check that a cluster node, its command server and genserver traffic
// between nodes behave as notp's do, and say where this package differs.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/notp-go/notp"
	"github.com/notp-go/notp/chash"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/kernel"
)

const testCookie = "cluster-test-cookie"

var seq atomic.Int64

// nodeOpts are the knobs a test changes.
type nodeOpts struct {
	ml     *memberlist.Config // nil = clustertest.FastMemberlist()
	id     string
	port   int
	flush  string
	ring   string
	allow  bool
	noWait bool
}

// newNode builds (not starts) a node on loopback, stopped at cleanup.
func newNode(t *testing.T, o nodeOpts) *cluster.Node {
	t.Helper()
	ml := o.ml
	if ml == nil {
		ml = clustertest.FastMemberlist()
	}
	n, err := cluster.New(cluster.Config{
		Node:   notp.Node{ID: o.id, Host: "127.0.0.1", Port: o.port},
		Cookie: testCookie,
		Gossip: gossip.Config{
			FlushPath:     o.flush,
			FlushInterval: 20 * time.Millisecond,
			Interval:      100 * time.Millisecond,
			Memberlist:    ml,
		},
		AllowMemberCommands: o.allow,
		Logger:              clustertest.Logger(t),
	})
	if err != nil {
		t.Fatalf("cluster.New(%s): %v", o.id, err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	return n
}

// startNode builds and starts a node in ring o.ring ("ring" if empty).
func startNode(t *testing.T, o nodeOpts) *cluster.Node {
	t.Helper()
	if o.ring == "" {
		o.ring = "ring"
	}
	n := newNode(t, o)
	if err := n.Start(ctxT(t), o.ring); err != nil {
		t.Fatalf("Start(%s): %v", o.id, err)
	}
	return n
}

func ctxT(t *testing.T) context.Context { return clustertest.Context(t, 15*time.Second) }

// admin is an operator's client: a kernel that is not a ring member.
type admin struct {
	t *testing.T
	k *kernel.Kernel
}

func newAdmin(t *testing.T, cookie string) *admin {
	t.Helper()
	k, err := kernel.New(kernel.Config{
		Node:   notp.Node{ID: fmt.Sprintf("admin%d", seq.Add(1)), Host: "127.0.0.1"},
		Cookie: cookie, Logger: clustertest.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return &admin{t: t, k: k}
}

// rawCall sends a command with a raw payload.
func rawCall(t *testing.T, k *kernel.Kernel, to notp.Node, cmd string, payload []byte) (command.Reply, error) {
	t.Helper()
	if err := k.Connect(to); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A link whose last dial failed (the node was down) fails calls at
	// once with kernel.ErrNodeDown: wait for it to reconnect first.
	if err := k.WaitConnected(ctx, to.ID); err != nil {
		return command.Reply{}, err
	}
	b, err := genserver.CallRaw(ctx, k, genserver.Target{Name: command.ServerName, Node: to}, cmd, payload)
	if err != nil {
		return command.Reply{}, err
	}
	return command.DecodeReply(b)
}

func (a *admin) do(to *cluster.Node, cmd string, args command.Args) command.Reply {
	a.t.Helper()
	p, err := command.EncodeArgs(args)
	if err != nil {
		a.t.Fatal(err)
	}
	r, err := rawCall(a.t, a.k, to.Self(), cmd, p)
	if err != nil {
		a.t.Fatalf("%s on %s: %v", cmd, to.Self().ID, err)
	}
	return r
}

// ok runs a command that must succeed and decodes its data into v (if
// not nil).
func (a *admin) ok(to *cluster.Node, cmd string, args command.Args, v any) {
	a.t.Helper()
	r := a.do(to, cmd, args)
	if !r.OK {
		a.t.Fatalf("%s on %s: %+v", cmd, to.Self().ID, r.Error)
	}
	if v != nil {
		if err := json.Unmarshal(r.Data, v); err != nil {
			a.t.Fatalf("%s data %s: %v", cmd, r.Data, err)
		}
	}
}

func (a *admin) fail(to *cluster.Node, cmd string, args command.Args, code, msg string) command.Reply {
	a.t.Helper()
	r := a.do(to, cmd, args)
	if r.OK || r.Error == nil || r.Error.Code != code || (msg != "" && r.Error.Message != msg) {
		a.t.Fatalf("%s on %s: got %+v, want %s %q", cmd, to.Self().ID, r.Error, code, msg)
	}
	return r
}

// ringIDs returns the sorted ids of n's ring.
func ringIDs(n *cluster.Node) []string {
	var ids []string
	for _, nd := range n.Ring().View().Nodes() {
		ids = append(ids, nd.ID)
	}
	sort.Strings(ids)
	return ids
}

// converged reports whether every node's ring holds exactly want, with
// equal tokens and the same ring id.
func converged(ns []*cluster.Node, want ...string) bool {
	sort.Strings(want)
	for _, n := range ns {
		if !slices.Equal(ringIDs(n), want) || !n.Ring().View().Equal(ns[0].Ring().View()) ||
			n.Ring().RingID() != ns[0].Ring().RingID() {
			return false
		}
	}
	return true
}

func allAlive(n *cluster.Node, want int) bool {
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

// threeNodes starts a, b, c and forms the cluster with meet commands from
// an admin client.
func threeNodes(t *testing.T, flushDir string) (*admin, []*cluster.Node) {
	t.Helper()
	return threeNodesWith(t, flushDir, nil)
}

// threeNodesWith is threeNodes with memberlist configs from ml (nil =
// clustertest.FastMemberlist()).
func threeNodesWith(t *testing.T, flushDir string, ml func() *memberlist.Config) (*admin, []*cluster.Node) {
	t.Helper()
	var ns []*cluster.Node
	for _, id := range []string{"a", "b", "c"} {
		o := nodeOpts{id: id}
		if ml != nil {
			o.ml = ml()
		}
		if flushDir != "" {
			o.flush = filepath.Join(flushDir, id+".ring")
		}
		ns = append(ns, startNode(t, o))
	}
	adm := newAdmin(t, testCookie)
	// meet -> ok:true; meeting is transitive through the ring union.
	adm.ok(ns[0], command.Meet, command.Args{Node: ptr(ns[1].Self())}, nil)
	adm.ok(ns[1], command.Meet, command.Args{Node: ptr(ns[2].Self())}, nil)
	clustertest.WaitFor(t, "three-node ring", func() bool { return converged(ns, "a", "b", "c") })
	for _, n := range ns {
		clustertest.WaitFor(t, "all alive on "+n.Self().ID, func() bool { return allAlive(n, 3) })
	}
	return adm, ns
}

func ptr(n notp.Node) *notp.Node { return &n }

// Every command through a real kernel call from a non-member kernel, on a
// real three-node cluster: the shape of each reply and the text of each
// error.
func TestCommandsOnCluster(t *testing.T) {
	adm, ns := threeNodes(t, "")
	a, b, c := ns[0], ns[1], ns[2]

	var pong string
	adm.ok(c, command.Ping, command.Args{}, &pong) // ping
	if pong != "pong" {
		t.Fatalf("ping = %q", pong)
	}

	// nodes (changed from notp: health added): nodes in ring order, all alive. Health
	// is the failure detector's view, which may flap on a loaded machine:
	// poll until it reports all alive.
	var nodes []command.NodeHealth
	clustertest.WaitFor(t, "nodes reports all alive", func() bool {
		adm.ok(b, command.Nodes, command.Args{}, &nodes)
		for _, n := range nodes {
			if n.Health != "alive" {
				return false
			}
		}
		return len(nodes) == 3
	})
	var got []string
	for _, n := range nodes {
		got = append(got, n.ID)
	}
	var order []string
	for _, n := range b.Ring().View().Nodes() {
		order = append(order, n.ID)
	}
	if !slices.Equal(got, order) {
		t.Fatalf("nodes order %v, ring order %v", got, order)
	}

	// insert with a weight, seen everywhere.
	x := notp.Node{ID: "x", Host: "127.0.0.1", Port: 1}
	adm.ok(a, command.Insert, command.Args{Node: &x, Weight: 5}, nil)
	clustertest.WaitFor(t, "x everywhere", func() bool { return converged(ns, "a", "b", "c", "x") })
	// weight and weights
	var w int
	adm.ok(c, command.Weight, command.Args{ID: "x"}, &w)
	if w != 5 {
		t.Fatalf("weight x = %d", w)
	}
	adm.fail(c, command.Weight, command.Args{ID: "nope"}, command.CodeFailed, "'nope' is not defined in this ring.")
	var ws map[string]int
	adm.ok(b, command.Weights, command.Args{}, &ws)
	if len(ws) != 4 || ws["x"] != 5 || ws["a"] != chash.DefaultRFactor {
		t.Fatalf("weights = %v", ws)
	}
	// lookup answers from the node's own ring; info counts its tokens and
	// carries the kernel's and gossip's counters.
	var lk command.LookupData
	adm.ok(b, command.Lookup, command.Args{Key: "user:42", N: 2}, &lk)
	if want := b.Ring().View().PreferenceList([]byte("user:42"), 2); lk.Owner == nil || *lk.Owner != want[0] || !slices.Equal(lk.Preference, want) {
		t.Fatalf("lookup = %+v, want %v", lk, want)
	}
	// events: the node logged the ring forming.
	var evs command.EventsData
	adm.ok(b, command.Events, command.Args{Since: 1}, &evs)
	kinds := map[string]bool{}
	for _, e := range evs.Events {
		kinds[e.Kind] = true
	}
	if evs.Next < 2 || !kinds["inserted"] {
		t.Fatalf("events = %+v", evs)
	}
	var info command.InfoData
	adm.ok(b, command.Info, command.Args{}, &info)
	if info.Node != b.Self() || info.Ring != b.Ring().RingID() || info.Nodes != 4 || info.Tokens != 3*chash.DefaultRFactor+5 ||
		info.Kernel == nil || info.Kernel.FramesIn == 0 || !strings.Contains(string(info.Gossip), `"MessagesReceived":`) || strings.Contains(string(info.Gossip), `"MessagesReceived":0,`) || info.Version == "" {
		t.Fatalf("info = %+v", info)
	}
	// get and has
	var gx notp.Node
	adm.ok(b, command.Get, command.Args{ID: "x"}, &gx)
	if gx != x {
		t.Fatalf("get x = %+v", gx)
	}
	adm.fail(b, command.Get, command.Args{ID: "nope"}, command.CodeFailed, "'nope' is not defined in this ring.")
	var has bool
	if adm.ok(a, command.Has, command.Args{ID: "x"}, &has); !has {
		t.Fatal("has x = false")
	}
	if adm.ok(a, command.Has, command.Args{ID: "nope"}, &has); has {
		t.Fatal("has nope = true")
	}

	// update, weight ≤ 0 -> rfactor.
	x2 := notp.Node{ID: "x", Host: "127.0.0.1", Port: 2}
	adm.ok(b, command.Update, command.Args{Node: &x2}, nil)
	clustertest.WaitFor(t, "x updated everywhere", func() bool {
		for _, n := range ns {
			got, ok := n.Ring().View().Get("x")
			if !ok || got != x2 || n.Ring().View().Weights()["x"] != chash.DefaultRFactor {
				return false
			}
		}
		return true
	})

	// minsert filters self, keeps order; weight.
	y := notp.Node{ID: "y", Host: "127.0.0.1", Port: 3}
	z := notp.Node{ID: "z", Host: "127.0.0.1", Port: 4}
	adm.ok(c, command.MInsert, command.Args{Nodes: []notp.Node{z, c.Self(), y}, Weight: 2}, nil)
	clustertest.WaitFor(t, "y, z everywhere", func() bool { return converged(ns, "a", "b", "c", "x", "y", "z") })
	if ws := a.Ring().View().Weights(); ws["y"] != 2 || ws["z"] != 2 || ws["c"] != chash.DefaultRFactor {
		t.Fatalf("weights after minsert: %v", ws)
	}

	// inspect.
	var ins command.InspectData
	adm.ok(a, command.Inspect, command.Args{}, &ins)
	if ins.Ring != "ring" || ins.RFactor != chash.DefaultRFactor || ins.PFactor != 2 || len(ins.Nodes) != 6 || ins.VClock == nil || ins.VClock.Size() == 0 {
		t.Fatalf("inspect = %+v", ins)
	}
	// ownership
	var shares []command.Share
	adm.ok(a, command.Ownership, command.Args{}, &shares)
	sum := 0.0
	var ids []string
	for _, s := range shares {
		sum += s.Share
		ids = append(ids, s.ID)
	}
	if !slices.Equal(ids, []string{"a", "b", "c", "x", "y", "z"}) || sum < 0.999999 || sum > 1.000001 {
		t.Fatalf("ownership %+v", shares)
	}

	// mremove (self filtered) and remove.
	adm.ok(b, command.MRemove, command.Args{Nodes: []notp.Node{y, b.Self(), z}}, nil)
	adm.ok(c, command.Remove, command.Args{Node: &x2, Force: true}, nil)
	clustertest.WaitFor(t, "x, y, z removed everywhere", func() bool { return converged(ns, "a", "b", "c") })

	// join while in a ring.
	adm.fail(a, command.Join, command.Args{ID: "other"}, command.CodeFailed, "Node already belongs to ring 'ring'")

	// Bad payloads: ok:false BAD_REQUEST with per-field messages.
	r := adm.fail(a, command.Insert, command.Args{}, command.CodeBadRequest, "Invalid node parameter types.")
	if r.Error.Fields["node"] == "" {
		t.Fatalf("fields = %v", r.Error.Fields)
	}
	adm.fail(a, command.Get, command.Args{}, command.CodeBadRequest, "Missing required 'id' parameter.")
	bad, _ := command.EncodeArgs(command.Args{})
	bad = append([]byte{0x81, 0xa4, 'n', 'o', 'd', 'e', 0xa3, 'f', 'o', 'o'}, bad[:0]...) // {"node": "foo"}
	if r, err := rawCall(t, adm.k, a.Self(), command.Meet, bad); err != nil || r.OK || r.Error.Code != command.CodeBadRequest {
		t.Fatalf("meet with a string node: %+v %v", r, err)
	}

	// leave (force false): c is alone, without a ring id; the
	// others drop it.
	adm.ok(c, command.Leave, command.Args{}, nil)
	if c.Ring().RingID() != "" || !slices.Equal(ringIDs(c), []string{"c"}) {
		t.Fatalf("after leave: ring %q nodes %v", c.Ring().RingID(), ringIDs(c))
	}
	clustertest.WaitFor(t, "a and b drop c", func() bool { return converged([]*cluster.Node{a, b}, "a", "b") })
	// join when in no ring, then twice.
	adm.ok(c, command.Join, command.Args{ID: "ring2"}, nil)
	adm.fail(c, command.Join, command.Args{ID: "ring2"}, command.CodeFailed, "Node already belongs to ring 'ring2'")
}

// Commands from a ring member (or from the node itself) are refused with
// NOT_ALLOWED, where notp ignored them silently and left the caller to time
// out; a non-member is served; AllowMemberCommands lifts the rule.
func TestMemberRefusal(t *testing.T) {
	adm, ns := threeNodes(t, "")
	a, b := ns[0], ns[1]
	r, err := rawCall(t, b.Kernel(), a.Self(), command.Ping, nil)
	if err != nil || r.OK || r.Error.Code != command.CodeNotAllowed {
		t.Fatalf("ping from member b: %+v %v", r.Error, err)
	}
	r, err = rawCall(t, a.Kernel(), a.Self(), command.Ping, nil)
	if err != nil || r.OK || r.Error.Code != command.CodeNotAllowed {
		t.Fatalf("ping from self: %+v %v", r.Error, err)
	}
	adm.ok(a, command.Ping, command.Args{}, nil)

	d := startNode(t, nodeOpts{id: "d", allow: true})
	r, err = rawCall(t, d.Kernel(), d.Self(), command.Ping, nil)
	if err != nil || !r.OK {
		t.Fatalf("AllowMemberCommands: %+v %v", r.Error, err)
	}
}

// Commands need the cluster cookie, since they reconfigure the ring: a
// client with another cookie cannot reach the command server (the node
// sets its cookie on Start).
func TestCommandsNeedCookie(t *testing.T) {
	a := startNode(t, nodeOpts{id: "a"})
	wrong := newAdmin(t, "not-the-cluster-cookie")
	if err := wrong.k.Connect(a.Self()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := genserver.CallRaw(ctx, wrong.k, genserver.Target{Name: command.ServerName, Node: a.Self()}, command.Ping, nil)
	if err == nil {
		t.Fatal("a client with the wrong cookie ran a command")
	}
	clustertest.WaitFor(t, "the node rejects the handshake", func() bool { return a.Kernel().Stats().RejectedHandshake > 0 })
}

// The accessors (Go has no setters); Start sets the ring id and serves;
// Stop does not leave the ring, unlike notp's stop, so the ring id stays
// and is persisted and a restarted node comes back with its ring.
func TestStartStop(t *testing.T) {
	dir := t.TempDir()
	flush := filepath.Join(dir, "a.ring")
	n := newNode(t, nodeOpts{id: "a", flush: flush})
	if n.Kernel() == nil || n.Ring() == nil {
		t.Fatal("nil accessors")
	}
	if err := n.Leave(ctxT(t), false); !errors.Is(err, cluster.ErrNotStarted) {
		t.Fatalf("Leave before Start: %v", err)
	}
	if err := n.Start(ctxT(t), "r1"); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctxT(t), "r1"); !errors.Is(err, cluster.ErrAlreadyStarted) {
		t.Fatalf("second Start: %v", err)
	}
	if n.Self().Port == 0 || n.Ring().RingID() != "r1" {
		t.Fatalf("self %v ring %q", n.Self(), n.Ring().RingID())
	}
	adm := newAdmin(t, testCookie)
	adm.ok(n, command.Ping, command.Args{}, nil)

	if err := n.Stop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(ctxT(t)); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := n.Start(ctxT(t), "r1"); !errors.Is(err, cluster.ErrClosed) {
		t.Fatalf("Start after Stop: %v", err)
	}
	if err := n.Leave(ctxT(t), false); !errors.Is(err, cluster.ErrClosed) {
		t.Fatalf("Leave after Stop: %v", err)
	}
	if _, err := n.Kernel().Call(ctxT(t), n.Self(), command.ServerName, nil); !errors.Is(err, kernel.ErrClosed) {
		t.Fatalf("kernel after Stop: %v", err)
	}
	if got := n.Kernel().Stats().ActiveConnections; got != 0 {
		t.Fatalf("%d connections after Stop", got)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("Close after Stop: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := genserver.CallRaw(ctx, adm.k, genserver.Target{Name: command.ServerName, Node: n.Self()}, command.Ping, nil); err == nil {
		t.Fatal("command served after Stop")
	}
	// Stop did not leave: the flush file still names ring r1.
	if _, err := os.Stat(flush); err != nil {
		t.Fatalf("flush file: %v", err)
	}
}

// A loaded ring id that differs fails Start with notp's text and starts
// nothing; the same node can then start with the right id. A corrupt flush
// file fails Start.
func TestRingMismatchAndLoadError(t *testing.T) {
	dir := t.TempDir()
	flush := filepath.Join(dir, "a.ring")
	first := startNode(t, nodeOpts{id: "a", flush: flush, ring: "r1"})
	if err := first.Stop(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	n := newNode(t, nodeOpts{id: "a", flush: flush})
	err := n.Start(ctxT(t), "r2")
	if !errors.Is(err, cluster.ErrRingMismatch) || !strings.Contains(err.Error(), "Loaded ring ID 'r1' does not match 'r2'") {
		t.Fatalf("Start(r2) with r1 loaded: %v", err)
	}
	if n.Kernel().Addr() != nil {
		t.Fatal("the kernel listens after a mismatch")
	}
	if err := n.Start(ctxT(t), "r1"); err != nil {
		t.Fatalf("Start(r1) after the mismatch: %v", err)
	}
	if n.Ring().RingID() != "r1" {
		t.Fatalf("ring id %q", n.Ring().RingID())
	}

	bad := filepath.Join(dir, "bad.ring")
	if err := os.WriteFile(bad, []byte("not a ring file"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := newNode(t, nodeOpts{id: "m", flush: bad})
	if err := m.Start(ctxT(t), "r1"); !errors.Is(err, gossip.ErrCorrupt) {
		t.Fatalf("Start with a corrupt flush file: %v", err)
	}
}

// Loading the flush file on restart: a node stopped (not left) and
// restarted from its flush file on the same port gets its ring back,
// connects to the members and agrees with the others again; the others saw
// it fail.
func TestRestartFromFlushFile(t *testing.T) {
	dir := t.TempDir()
	adm, ns := threeNodes(t, dir)
	a, b, c := ns[0], ns[1], ns[2]
	adm.ok(a, command.Insert, command.Args{Node: &notp.Node{ID: "x", Host: "127.0.0.1", Port: 9}, Weight: 4}, nil)
	clustertest.WaitFor(t, "x everywhere", func() bool { return converged(ns, "a", "b", "c", "x") })
	want := b.Ring().View()

	port := b.Self().Port
	if err := b.Stop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, "a sees b fail", func() bool {
		for _, m := range a.Ring().Members() {
			if m.Node.ID == "b" {
				return m.Health == gossip.HealthSuspect || m.Health == gossip.HealthDead
			}
		}
		return false
	})

	b2 := startNode(t, nodeOpts{id: "b", port: port, flush: filepath.Join(dir, "b.ring")})
	if !b2.Ring().View().Equal(want) {
		t.Fatalf("restarted b's ring %v, want %v", ringIDs(b2), want.Nodes())
	}
	ns = []*cluster.Node{a, b2, c}
	clustertest.WaitFor(t, "rings agree after restart", func() bool { return converged(ns, "a", "b", "c", "x") })
	for _, n := range ns {
		clustertest.WaitFor(t, "alive on "+n.Self().ID, func() bool {
			for _, m := range n.Ring().Members() {
				if m.Node.ID != "x" && m.Health != gossip.HealthAlive {
					return false
				}
			}
			return true
		})
	}
	// The restarted node links to every ring member except self.
	clustertest.WaitFor(t, "b2 links to a and c", func() bool {
		return b2.Kernel().Connected("a") && b2.Kernel().Connected("c")
	})
	adm.ok(b2, command.Ping, command.Args{}, nil)
}

// Genserver calls and casts between two cluster nodes joined by meet,
// locally and remotely. (notp's distributed lock and state managers, DLM
// and DSM, have no counterpart in this package and are not tested.)
func TestIntegrationGenServer(t *testing.T) {
	a := startNode(t, nodeOpts{id: "foo"})
	b := startNode(t, nodeOpts{id: "bar"})
	if err := a.Ring().Meet(ctxT(t), b.Self()); err != nil {
		t.Fatal(err)
	}
	ns := []*cluster.Node{a, b}
	clustertest.WaitFor(t, "two-node ring", func() bool { return converged(ns, "foo", "bar") })

	casts := map[string]chan string{}
	for _, n := range ns {
		ch := make(chan string, 4)
		casts[n.Self().ID] = ch
		s, err := genserver.New(n.Kernel(), genserver.Config{Name: "test_server", Logger: clustertest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		s.Handle("job", func(_ context.Context, r genserver.Request) ([]byte, error) { return r.Data, nil })
		s.Handle("note", func(_ context.Context, r genserver.Request) ([]byte, error) {
			ch <- string(r.Data)
			return nil, nil
		})
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop(context.Background()) })
	}
	for _, to := range ns { // a local call, then remote ones
		got, err := genserver.CallRaw(ctxT(t), a.Kernel(), genserver.Target{Name: "test_server", Node: to.Self()}, "job", []byte("bar"))
		if err != nil || string(got) != "bar" {
			t.Fatalf("call to %s: %q %v", to.Self().ID, got, err)
		}
	}
	// A local cast, then casts both ways.
	for _, pair := range [][2]*cluster.Node{{a, a}, {a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		srv, _ := genserver.New(from.Kernel(), genserver.Config{})
		if err := srv.Cast(genserver.Target{Name: "test_server", Node: to.Self()}, "note", []byte(from.Self().ID)); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-casts[to.Self().ID]:
			if got != from.Self().ID {
				t.Fatalf("cast %s->%s delivered %q", from.Self().ID, to.Self().ID, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("cast %s->%s not delivered", from.Self().ID, to.Self().ID)
		}
	}
}

// New rejects bad configurations with clear errors.
func TestNewValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  cluster.Config
		want error
	}{
		{"no id", cluster.Config{Node: notp.Node{Host: "127.0.0.1"}, Cookie: testCookie}, notp.ErrInvalidNode},
		{"bad port", cluster.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1", Port: 70000}, Cookie: testCookie}, notp.ErrInvalidNode},
		{"no cookie", cluster.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}}, kernel.ErrInsecure},
		{"weak cookie", cluster.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}, Cookie: "s3cret"}, kernel.ErrWeakCookie},
		{"negative timeout", cluster.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}, Cookie: testCookie, CommandTimeout: -1}, cluster.ErrInvalidConfig},
		{"rfactor too large", cluster.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}, Cookie: testCookie, Gossip: gossip.Config{RFactor: gossip.MaxWeight + 1}}, cluster.ErrInvalidConfig},
		{"negative gossip interval", cluster.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}, Cookie: testCookie, Gossip: gossip.Config{Interval: -1}}, gossip.ErrInvalidConfig},
		{"small kernel frames", cluster.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}, Cookie: testCookie, Kernel: kernel.Config{MaxFrameSize: kernel.ChunkSize}}, kernel.ErrInvalidConfig},
		{"negative kernel pollers", cluster.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}, Cookie: testCookie, Kernel: kernel.Config{MaxPollers: -1}}, kernel.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every one is a config error of the node as well as the
			// part's own.
			_, err := cluster.New(tt.cfg)
			if !errors.Is(err, tt.want) || !errors.Is(err, cluster.ErrInvalidConfig) {
				t.Fatalf("New: %v, want %v and cluster.ErrInvalidConfig", err, tt.want)
			}
		})
	}
	if _, err := cluster.New(cluster.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}, Cookie: "s3cret", AllowWeakCookie: true}); err != nil {
		t.Fatalf("weak cookie with AllowWeakCookie: %v", err)
	}
	n, err := cluster.New(cluster.Config{Node: notp.Node{ID: "a"}, Insecure: true})
	if err != nil {
		t.Fatalf("insecure node: %v", err)
	}
	if h, _ := os.Hostname(); n.Self().Host != h {
		t.Fatalf("default host %q, want %q", n.Self().Host, h)
	}
	if err := n.Stop(context.Background()); err != nil {
		t.Fatalf("Stop of a node never started: %v", err)
	}
	if err := n.Start(context.Background(), "r"); !errors.Is(err, cluster.ErrClosed) {
		t.Fatalf("Start after Stop: %v", err)
	}
}

// Close stops a started node at once: its port closes, its ring is left
// unannounced, and it cannot start again.
func TestNodeClose(t *testing.T) {
	n := startNode(t, nodeOpts{id: "a"})
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := n.Kernel().Call(ctxT(t), n.Self(), command.ServerName, nil); !errors.Is(err, kernel.ErrClosed) {
		t.Fatalf("kernel after Close: %v", err)
	}
	if err := n.Start(ctxT(t), "ring"); !errors.Is(err, cluster.ErrClosed) || !errors.Is(err, notp.ErrClosed) {
		t.Fatalf("Start after Close: %v, want ErrClosed", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Stop leaves no goroutine behind: two nodes that met, served a command
// and stopped return the process to its goroutine count.
func TestStopLeavesNoGoroutines(t *testing.T) {
	clustertest.CheckLeaks(t)
	a := startNode(t, nodeOpts{id: "a"})
	b := startNode(t, nodeOpts{id: "b"})
	if err := a.Ring().Meet(ctxT(t), b.Self()); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, "two-node ring", func() bool { return converged([]*cluster.Node{a, b}, "a", "b") })
	adm := newAdmin(t, testCookie)
	adm.ok(a, command.Ping, command.Args{}, nil)
	_ = adm.k.Close()
	for _, n := range []*cluster.Node{a, b} {
		if err := n.Stop(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
}
