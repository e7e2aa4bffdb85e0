package cluster

// Unit tests of the command server against a ring double, through real
// kernel calls from a non-member kernel: the double records the exact
// arguments each command passes to the ring (force, weight defaults, self
// filtering, order), which the real ring cannot show. They check that each
// command behaves as notp's command server does, and say where it differs.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/chash"
	"github.com/notp-go/notp/cluster/internal/cmdargs"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/vclock"
)

// ringCall is one mutating call the double received.
type ringCall struct {
	Op     string
	ID     string
	Nodes  []notp.Node
	Weight int
	Force  bool
}

// fakeRing is a ringService double over a real chash.Ring.
type fakeRing struct {
	mu     sync.Mutex
	id     string
	ring   *chash.Ring
	clock  *vclock.Clock
	calls  []ringCall
	err    error         // returned by the next mutating call, then cleared
	block  chan struct{} // when set, Meet waits for it or ctx
	inMeet atomic.Int32  // Meets waiting on block now
	ctxErr error         // the ctx error Meet saw
}

var _ ringService = (*fakeRing)(nil)

func newFakeRing(self notp.Node, id string) *fakeRing {
	f := &fakeRing{id: id, ring: chash.New(3, 2), clock: vclock.New()}
	f.ring.Insert(self, 0)
	return f
}

func (f *fakeRing) record(c ringCall) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	err := f.err
	f.err = nil
	return err
}

func (f *fakeRing) lastCall() ringCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return ringCall{}
	}
	return f.calls[len(f.calls)-1]
}

func (f *fakeRing) numCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeRing) failNext(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *fakeRing) RingID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.id
}

func (f *fakeRing) Join(id string) error {
	if err := f.record(ringCall{Op: "join", ID: id}); err != nil {
		return err
	}
	f.mu.Lock()
	f.id = id
	f.mu.Unlock()
	return nil
}

func (f *fakeRing) Leave(_ context.Context, force bool) error {
	return f.record(ringCall{Op: "leave", Force: force})
}

func (f *fakeRing) Meet(ctx context.Context, n notp.Node) error {
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block != nil {
		f.inMeet.Add(1)
		defer f.inMeet.Add(-1)
		select {
		case <-block:
		case <-ctx.Done():
			f.mu.Lock()
			f.ctxErr = ctx.Err()
			f.mu.Unlock()
			return ctx.Err()
		}
	}
	return f.record(ringCall{Op: "meet", Nodes: []notp.Node{n}})
}

func (f *fakeRing) Insert(_ context.Context, n notp.Node, w int, force bool) error {
	if err := f.record(ringCall{Op: "insert", Nodes: []notp.Node{n}, Weight: w, Force: force}); err != nil {
		return err
	}
	f.ring.Insert(n, w)
	return nil
}

func (f *fakeRing) MInsert(_ context.Context, ns []notp.Node, w int, force bool) error {
	if err := f.record(ringCall{Op: "minsert", Nodes: slices.Clone(ns), Weight: w, Force: force}); err != nil {
		return err
	}
	for _, n := range ns {
		f.ring.Insert(n, w)
	}
	return nil
}

func (f *fakeRing) Update(_ context.Context, n notp.Node, w int, force bool) error {
	if err := f.record(ringCall{Op: "update", Nodes: []notp.Node{n}, Weight: w, Force: force}); err != nil {
		return err
	}
	f.ring.Update(n, w)
	return nil
}

func (f *fakeRing) Remove(_ context.Context, n notp.Node, force bool) error {
	if err := f.record(ringCall{Op: "remove", Nodes: []notp.Node{n}, Force: force}); err != nil {
		return err
	}
	f.ring.Remove(n.ID)
	return nil
}

func (f *fakeRing) MRemove(_ context.Context, ns []notp.Node, force bool) error {
	if err := f.record(ringCall{Op: "mremove", Nodes: slices.Clone(ns), Force: force}); err != nil {
		return err
	}
	for _, n := range ns {
		f.ring.Remove(n.ID)
	}
	return nil
}

func (f *fakeRing) View() gossip.View        { return gossip.NewView(f.ring) }
func (f *fakeRing) Clock() *vclock.Clock     { return f.clock.Clone() }
func (f *fakeRing) RFactor() int             { return f.ring.RFactor() }
func (f *fakeRing) PFactor() int             { return f.ring.PFactor() }
func (f *fakeRing) setBlock(c chan struct{}) { f.mu.Lock(); f.block = c; f.mu.Unlock() }

var testSeq atomic.Int64

func testLogger(t testing.TB) *slog.Logger {
	return testutil.Logger(t)
}

// startKernel starts a kernel on loopback port 0, closed at cleanup.
func startKernel(t testing.TB, id string) *kernel.Kernel {
	t.Helper()
	k, err := kernel.New(kernel.Config{
		Node:   notp.Node{ID: id, Host: "127.0.0.1"},
		Cookie: "cluster-unit-test-cookie",
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// cmdHarness is a command server over a fakeRing on one kernel and a
// client kernel that is not a ring member.
type cmdHarness struct {
	t      testing.TB
	server *kernel.Kernel
	client *kernel.Kernel
	ring   *fakeRing
	cs     *commandServer
}

func newCmdHarness(t testing.TB, timeout time.Duration, allowMembers bool) *cmdHarness {
	t.Helper()
	return newCmdHarnessLog(t, timeout, allowMembers, testLogger(t))
}

// newCmdHarnessLog is newCmdHarness with the command server logging to log.
func newCmdHarnessLog(t testing.TB, timeout time.Duration, allowMembers bool, log *slog.Logger) *cmdHarness {
	t.Helper()
	n := testSeq.Add(1)
	sk := startKernel(t, fmt.Sprintf("srv%d", n))
	ck := startKernel(t, fmt.Sprintf("cli%d", n))
	ring := newFakeRing(sk.Self(), "ring1")
	srv, err := genserver.New(sk, genserver.Config{Name: command.ServerName, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	cs := &commandServer{
		srv: srv, ring: ring, self: sk.Self, timeout: timeout, allowMembers: allowMembers,
		health: func() map[string]string { return map[string]string{sk.Self().ID: "alive"} },
		log:    log,
	}
	cs.register()
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if err := ck.Connect(sk.Self()); err != nil {
		t.Fatal(err)
	}
	return &cmdHarness{t: t, server: sk, client: ck, ring: ring, cs: cs}
}

// call sends a command from k and decodes the reply.
func (h *cmdHarness) callFrom(k *kernel.Kernel, name string, payload []byte) command.Reply {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := genserver.CallRaw(ctx, k, genserver.Target{Name: command.ServerName, Node: h.server.Self()}, name, payload)
	if err != nil {
		h.t.Fatalf("%s: call: %v", name, err)
	}
	r, err := command.DecodeReply(b)
	if err != nil {
		h.t.Fatalf("%s: %v", name, err)
	}
	return r
}

func (h *cmdHarness) call(name string, a command.Args) command.Reply {
	h.t.Helper()
	b, err := command.EncodeArgs(a)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.callFrom(h.client, name, b)
}

func mustOK(t *testing.T, r command.Reply) {
	t.Helper()
	if !r.OK {
		t.Fatalf("reply not ok: %+v", r.Error)
	}
}

func mustFail(t *testing.T, r command.Reply, code, msg string) {
	t.Helper()
	if r.OK || r.Error == nil {
		t.Fatalf("reply ok, want %s %q", code, msg)
	}
	if r.Error.Code != code || (msg != "" && r.Error.Message != msg) {
		t.Fatalf("error = %s %q, want %s %q", r.Error.Code, r.Error.Message, code, msg)
	}
}

func decodeData[T any](t *testing.T, r command.Reply) T {
	t.Helper()
	mustOK(t, r)
	var v T
	if err := json.Unmarshal(r.Data, &v); err != nil {
		t.Fatalf("data %s: %v", r.Data, err)
	}
	return v
}

func node(id string, port int) notp.Node { return notp.Node{ID: id, Host: "127.0.0.1", Port: port} }

// Join, leave (with and without force) and meet.
func TestCommandJoinLeaveMeet(t *testing.T) {
	h := newCmdHarness(t, 5*time.Second, false)
	// Join while in a ring -> ok:false with notp's text.
	mustFail(t, h.call(command.Join, command.Args{ID: "other"}), command.CodeFailed, "Node already belongs to ring 'ring1'")
	if h.ring.numCalls() != 0 {
		t.Fatalf("join while in a ring reached the ring: %+v", h.ring.lastCall())
	}
	// Leave passes force, default false.
	mustOK(t, h.call(command.Leave, command.Args{}))
	if c := h.ring.lastCall(); c.Op != "leave" || c.Force {
		t.Fatalf("leave: %+v", c)
	}
	mustOK(t, h.call(command.Leave, command.Args{Force: true}))
	if c := h.ring.lastCall(); c.Op != "leave" || !c.Force {
		t.Fatalf("leave -f: %+v", c)
	}
	// Join when not in a ring.
	h.ring.mu.Lock()
	h.ring.id = ""
	h.ring.mu.Unlock()
	mustOK(t, h.call(command.Join, command.Args{ID: "ring2"}))
	if c := h.ring.lastCall(); c.Op != "join" || c.ID != "ring2" {
		t.Fatalf("join: %+v", c)
	}
	// Meet passes the node.
	peer := node("peer", 9000)
	mustOK(t, h.call(command.Meet, command.Args{Node: &peer}))
	if c := h.ring.lastCall(); c.Op != "meet" || !slices.Equal(c.Nodes, []notp.Node{peer}) {
		t.Fatalf("meet: %+v", c)
	}
	// A ring error becomes ok:false FAILED with its text.
	h.ring.failNext(errors.New("gossip: boom"))
	mustFail(t, h.call(command.Meet, command.Args{Node: &peer}), command.CodeFailed, "gossip: boom")
}

// The ring mutations: weight defaults, force, self filtering and order.
func TestCommandMutations(t *testing.T) {
	h := newCmdHarness(t, 5*time.Second, false)
	self := h.server.Self()
	a, b, c := node("a", 1), node("b", 2), node("c", 3)
	tests := []struct {
		item string
		cmd  string
		args command.Args
		want ringCall
	}{
		{"335 insert no weight", command.Insert, command.Args{Node: &a}, ringCall{Op: "insert", Nodes: []notp.Node{a}, Weight: 3}},
		{"335 insert negative weight", command.Insert, command.Args{Node: &a, Weight: -4}, ringCall{Op: "insert", Nodes: []notp.Node{a}, Weight: 3}},
		{"335 insert weight kept", command.Insert, command.Args{Node: &a, Weight: 7}, ringCall{Op: "insert", Nodes: []notp.Node{a}, Weight: 7}},
		{"336 insert force", command.Insert, command.Args{Node: &a, Force: true}, ringCall{Op: "insert", Nodes: []notp.Node{a}, Weight: 3, Force: true}},
		{"337 minsert no weight", command.MInsert, command.Args{Nodes: []notp.Node{a, b}}, ringCall{Op: "minsert", Nodes: []notp.Node{a, b}, Weight: 3}},
		{"337 minsert weight kept", command.MInsert, command.Args{Nodes: []notp.Node{a, b}, Weight: 5}, ringCall{Op: "minsert", Nodes: []notp.Node{a, b}, Weight: 5}},
		{"338 minsert force", command.MInsert, command.Args{Nodes: []notp.Node{a}, Force: true}, ringCall{Op: "minsert", Nodes: []notp.Node{a}, Weight: 3, Force: true}},
		// Changed: notp reversed the list; the order is preserved here.
		{"339 minsert filters self, keeps order", command.MInsert, command.Args{Nodes: []notp.Node{c, self, a, b}}, ringCall{Op: "minsert", Nodes: []notp.Node{c, a, b}, Weight: 3}},
		{"340 update no weight", command.Update, command.Args{Node: &a}, ringCall{Op: "update", Nodes: []notp.Node{a}, Weight: 3}},
		{"340 update weight kept", command.Update, command.Args{Node: &a, Weight: 9}, ringCall{Op: "update", Nodes: []notp.Node{a}, Weight: 9}},
		{"341 update force", command.Update, command.Args{Node: &a, Weight: 2, Force: true}, ringCall{Op: "update", Nodes: []notp.Node{a}, Weight: 2, Force: true}},
		{"342 remove", command.Remove, command.Args{Node: &b}, ringCall{Op: "remove", Nodes: []notp.Node{b}}},
		{"343 remove force", command.Remove, command.Args{Node: &b, Force: true}, ringCall{Op: "remove", Nodes: []notp.Node{b}, Force: true}},
		{"344 mremove", command.MRemove, command.Args{Nodes: []notp.Node{b, a}}, ringCall{Op: "mremove", Nodes: []notp.Node{b, a}}},
		{"345 mremove force", command.MRemove, command.Args{Nodes: []notp.Node{a}, Force: true}, ringCall{Op: "mremove", Nodes: []notp.Node{a}, Force: true}},
		{"346 mremove filters self", command.MRemove, command.Args{Nodes: []notp.Node{self, c, a}}, ringCall{Op: "mremove", Nodes: []notp.Node{c, a}}},
	}
	for _, tt := range tests {
		t.Run(tt.item, func(t *testing.T) {
			mustOK(t, h.call(tt.cmd, tt.args))
			got := h.ring.lastCall()
			if got.Op != tt.want.Op || !slices.Equal(got.Nodes, tt.want.Nodes) || got.Weight != tt.want.Weight || got.Force != tt.want.Force {
				t.Fatalf("ring got %+v, want %+v", got, tt.want)
			}
		})
	}
	// Only self: ok, and the ring is not called.
	before := h.ring.numCalls()
	mustOK(t, h.call(command.MInsert, command.Args{Nodes: []notp.Node{self}}))
	mustOK(t, h.call(command.MRemove, command.Args{Nodes: []notp.Node{self}}))
	if h.ring.numCalls() != before {
		t.Fatalf("self-only lists reached the ring")
	}
}

// The read commands' reply shapes and error texts.
func TestCommandReads(t *testing.T) {
	h := newCmdHarness(t, 5*time.Second, false)
	self := h.server.Self()
	a := node("a", 1)
	mustOK(t, h.call(command.Insert, command.Args{Node: &a, Weight: 5}))

	// ping
	if got := decodeData[string](t, h.call(command.Ping, command.Args{})); got != "pong" {
		t.Fatalf("ping = %q", got)
	}
	// has
	if !decodeData[bool](t, h.call(command.Has, command.Args{ID: "a"})) {
		t.Fatal("has a = false")
	}
	if decodeData[bool](t, h.call(command.Has, command.Args{ID: "zz"})) {
		t.Fatal("has zz = true")
	}
	// get, present and absent
	mustFail(t, h.call(command.Get, command.Args{ID: "zz"}), command.CodeFailed, "'zz' is not defined in this ring.")
	if got := decodeData[notp.Node](t, h.call(command.Get, command.Args{ID: "a"})); got != a {
		t.Fatalf("get a = %+v", got)
	}
	// weight, present and absent
	if got := decodeData[int](t, h.call(command.Weight, command.Args{ID: "a"})); got != 5 {
		t.Fatalf("weight a = %d", got)
	}
	mustFail(t, h.call(command.Weight, command.Args{ID: "zz"}), command.CodeFailed, "'zz' is not defined in this ring.")
	// weights
	w := decodeData[map[string]int](t, h.call(command.Weights, command.Args{}))
	if len(w) != 2 || w["a"] != 5 || w[self.ID] != 3 {
		t.Fatalf("weights = %v", w)
	}
	// nodes; changed: nodes carry their health from the failure detector.
	nodes := decodeData[[]command.NodeHealth](t, h.call(command.Nodes, command.Args{}))
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.ID)
		want := "unknown"
		if n.ID == self.ID {
			want = "alive"
		}
		if n.Health != want {
			t.Fatalf("node %s health %q, want %q", n.ID, n.Health, want)
		}
	}
	if want := idsOf(h.ring.ring.Nodes()); !slices.Equal(ids, want) {
		t.Fatalf("nodes order %v, want ring order %v", ids, want)
	}
	// Inspect returns the ring: id, factors, nodes with weights, clock.
	ins := decodeData[command.InspectData](t, h.call(command.Inspect, command.Args{}))
	if ins.Ring != "ring1" || ins.RFactor != 3 || ins.PFactor != 2 || len(ins.Nodes) != 2 || ins.VClock == nil {
		t.Fatalf("inspect = %+v", ins)
	}
	for _, n := range ins.Nodes {
		if n.Weight != w[n.ID] {
			t.Fatalf("inspect node %+v, weights %v", n, w)
		}
	}
	// ownership: shares sorted by id, summing to 1.
	sh := decodeData[[]command.Share](t, h.call(command.Ownership, command.Args{}))
	sum := 0.0
	for i, s := range sh {
		sum += s.Share
		if i > 0 && sh[i-1].ID >= s.ID {
			t.Fatalf("ownership not sorted by id: %+v", sh)
		}
	}
	if len(sh) != 2 || sum < 0.999999 || sum > 1.000001 {
		t.Fatalf("ownership = %+v (sum %v)", sh, sum)
	}
}

func idsOf(ns []notp.Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}

// Changed from notp: invalid payloads get ok:false BAD_REQUEST
// replies with notp's texts (notp stayed silent and the CLI hung).
func TestCommandBadPayloads(t *testing.T) {
	h := newCmdHarness(t, 5*time.Second, false)
	raw := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	type rawNode struct {
		ID   any `msgpack:"id"`
		Host any `msgpack:"host"`
		Port any `msgpack:"port"`
	}
	tests := []struct {
		name    string
		cmd     string
		payload []byte
		msg     string
		field   string // a key expected in Fields, "" = none checked
	}{
		{"get without id", command.Get, nil, cmdargs.MsgMissingID, "id"},
		{"has empty id", command.Has, raw(map[string]any{"id": ""}), cmdargs.MsgMissingID, "id"},
		{"weight without id", command.Weight, raw(map[string]any{}), cmdargs.MsgMissingID, "id"},
		{"join without id", command.Join, nil, cmdargs.MsgMissingID, "id"},
		{"meet without node", command.Meet, nil, cmdargs.MsgBadNode, "node"},
		{"insert bad port", command.Insert, raw(map[string]any{"node": rawNode{"a", "h", 0}}), cmdargs.MsgBadNode, "node.port"},
		{"update empty host", command.Update, raw(map[string]any{"node": rawNode{"a", "", 5}}), cmdargs.MsgBadNode, "node.host"},
		{"remove id with @", command.Remove, raw(map[string]any{"node": rawNode{"a@b", "h", 5}}), cmdargs.MsgBadNode, "node.id"},
		{"minsert without nodes", command.MInsert, nil, cmdargs.MsgBadNodeList, "nodes"},
		{"minsert bad element", command.MInsert, raw(map[string]any{"nodes": []rawNode{{"a", "h", 1}, {"b", "h", 70000}}}), cmdargs.MsgBadNodeList, "nodes[1].port"},
		{"mremove duplicate", command.MRemove, raw(map[string]any{"nodes": []rawNode{{"a", "h", 1}, {"a", "h", 2}}}), cmdargs.MsgBadNodeList, "nodes[1].id"},
		{"node of wrong type", command.Meet, raw(map[string]any{"node": "foo"}), "", ""},
		{"port of wrong type", command.Insert, raw(map[string]any{"node": rawNode{"a", "h", "x"}}), "", ""},
		{"garbage", command.Ping, []byte{0xc1, 0xff, 0x00}, "", ""},
		{"not a map", command.Inspect, raw([]int{1, 2}), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.callFrom(h.client, tt.cmd, tt.payload)
			mustFail(t, r, command.CodeBadRequest, tt.msg)
			if r.Error.Message == "" {
				t.Fatal("empty message")
			}
			if tt.field != "" {
				if _, ok := r.Error.Fields[tt.field]; !ok {
					t.Fatalf("fields %v lack %q", r.Error.Fields, tt.field)
				}
			}
		})
	}
	if n := h.ring.numCalls(); n != 0 {
		t.Fatalf("bad payloads reached the ring %d times", n)
	}
}

// Changed from notp: an unknown command gets an ok:false reply with
// UNKNOWN_COMMAND and notp's message (notp raised an error and sent no
// reply, so its CLI waited forever); an absurdly long name is cut short.
func TestCommandUnknown(t *testing.T) {
	h := newCmdHarness(t, 5*time.Second, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tt := range []struct{ event, msg string }{
		{"nope", "Cannot run against unknown command 'nope'"},
		{strings.Repeat("x", 1000), "Cannot run against unknown command '" + strings.Repeat("x", 64) + "…'"},
	} {
		b, err := genserver.CallRaw(ctx, h.client, genserver.Target{Name: command.ServerName, Node: h.server.Self()}, tt.event, nil)
		if err != nil {
			t.Fatalf("unknown command %.10q: %v", tt.event, err)
		}
		r, err := command.DecodeReply(b)
		if err != nil {
			t.Fatal(err)
		}
		mustFail(t, r, command.CodeUnknownCommand, tt.msg)
	}
	if n := h.ring.numCalls(); n != 0 {
		t.Fatalf("unknown commands reached the ring %d times", n)
	}
}

// Commands from self or from ring members are refused
// (changed: notp ignored them silently; here NOT_ALLOWED), non-members are
// served; AllowMemberCommands lifts the rule.
func TestCommandMemberRefusal(t *testing.T) {
	h := newCmdHarness(t, 5*time.Second, false)
	mustOK(t, h.call(command.Ping, command.Args{})) // a non-member is served
	// From self (a local call).
	mustFail(t, h.callFrom(h.server, command.Ping, nil), command.CodeNotAllowed, "")
	// From a ring member: insert the client, then it is refused.
	cl := h.client.Self()
	mustOK(t, h.call(command.Insert, command.Args{Node: &cl}))
	r := h.call(command.Ping, command.Args{})
	mustFail(t, r, command.CodeNotAllowed, "")
	before := h.ring.numCalls()
	mustFail(t, h.call(command.Remove, command.Args{Node: &cl}), command.CodeNotAllowed, "")
	if h.ring.numCalls() != before {
		t.Fatal("a refused command reached the ring")
	}

	h2 := newCmdHarness(t, 5*time.Second, true)
	if got := decodeData[string](t, h2.callFrom(h2.server, command.Ping, nil)); got != "pong" {
		t.Fatalf("AllowMemberCommands: ping from self = %q", got)
	}
}

// A ring operation that does not finish is bounded by the command
// timeout: the caller gets an ok:false reply and the actor serves the
// next command.
func TestCommandTimeout(t *testing.T) {
	h := newCmdHarness(t, 100*time.Millisecond, false)
	block := make(chan struct{})
	defer close(block)
	h.ring.setBlock(block)
	peer := node("peer", 9)
	r := h.call(command.Meet, command.Args{Node: &peer})
	mustFail(t, r, command.CodeFailed, context.DeadlineExceeded.Error())
	h.ring.mu.Lock()
	err := h.ring.ctxErr
	h.ring.mu.Unlock()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ring saw ctx error %v", err)
	}
	mustOK(t, h.call(command.Ping, command.Args{}))
}

// Stopping the command server lets the command in flight
// finish (notp: stop waits for idle) and a forced stop (an ended ctx)
// cancels it.
func TestCommandStopWaitsForInFlight(t *testing.T) {
	for _, forced := range []bool{false, true} {
		t.Run(fmt.Sprintf("forced=%v", forced), func(t *testing.T) {
			h := newCmdHarness(t, 10*time.Second, false)
			block := make(chan struct{})
			h.ring.setBlock(block)
			peer := node("peer", 9)
			replies := make(chan command.Reply, 1)
			go func() {
				b, _ := command.EncodeArgs(command.Args{Node: &peer})
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				raw, err := genserver.CallRaw(ctx, h.client, genserver.Target{Name: command.ServerName, Node: h.server.Self()}, command.Meet, b)
				r, derr := command.DecodeReply(raw)
				if err != nil || derr != nil {
					r = command.Fail("CALL", fmt.Sprint(err, derr))
				}
				replies <- r
			}()
			testutil.WaitFor(t, "meet in flight", func() bool { return h.ring.inMeet.Load() == 1 })
			stopCtx, cancel := context.WithCancel(context.Background())
			if forced {
				cancel()
			} else {
				defer cancel()
			}
			stopped := make(chan error, 1)
			go func() { stopped <- h.cs.srv.Stop(stopCtx) }()
			if forced {
				if err := <-stopped; !errors.Is(err, context.Canceled) {
					t.Fatalf("forced Stop: %v", err)
				}
				r := <-replies
				mustFail(t, r, command.CodeFailed, context.Canceled.Error())
				close(block)
				return
			}
			// Stop has begun once the server refuses new commands.
			testutil.WaitFor(t, "the server to refuse new commands", func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_, err := genserver.CallRaw(ctx, h.client, genserver.Target{Name: command.ServerName, Node: h.server.Self()}, command.Ping, nil)
				var re *kernel.RemoteError
				return errors.As(err, &re) && (re.Code == genserver.CodeStopped || re.Code == kernel.CodeUnknownName)
			})
			select {
			case err := <-stopped:
				t.Fatalf("Stop returned (%v) while a command was in flight", err)
			default:
			}
			close(block)
			if err := <-stopped; err != nil {
				t.Fatalf("Stop: %v", err)
			}
			// The command finished before Stop returned.
			if c := h.ring.lastCall(); c.Op != "meet" {
				t.Fatalf("meet not done when Stop returned: %+v", c)
			}
			mustOK(t, <-replies)
		})
	}
}

// logCapture is a slog.Handler keeping the records it is given.
type logCapture struct {
	mu      sync.Mutex
	records []slog.Record
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *logCapture) WithGroup(string) slog.Handler            { return c }
func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = append(c.records, r.Clone())
	return nil
}

// infoAttrs returns the attributes of the Info records with message msg.
func (c *logCapture) infoAttrs(msg string) []map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]string
	for _, r := range c.records {
		if r.Level != slog.LevelInfo || r.Message != msg {
			continue
		}
		m := map[string]string{}
		r.Attrs(func(a slog.Attr) bool {
			m[a.Key] = a.Value.String()
			return true
		})
		out = append(out, m)
	}
	return out
}

// Every mutating command is logged at Info with the sender's node ID and
// the address its connection came from, whether it succeeded or was
// refused; reads are not.
func TestCommandMutationsLogged(t *testing.T) {
	logs := &logCapture{}
	h := newCmdHarnessLog(t, 5*time.Second, false, slog.New(logs))
	x := notp.Node{ID: "x", Host: "127.0.0.1", Port: 9}
	y := notp.Node{ID: "y", Host: "127.0.0.1", Port: 10}
	h.call(command.Insert, command.Args{Node: &x, Weight: 2})
	h.call(command.MInsert, command.Args{Nodes: []notp.Node{y}})
	h.call(command.Update, command.Args{Node: &x, Weight: 3})
	h.call(command.Get, command.Args{ID: "x"})
	h.call(command.Weight, command.Args{ID: "x"})
	h.call(command.Remove, command.Args{Node: &x, Force: true})
	h.call(command.MRemove, command.Args{Nodes: []notp.Node{y}})
	h.call(command.Meet, command.Args{Node: &x})
	h.call(command.Join, command.Args{ID: "other"})
	h.call(command.Leave, command.Args{})
	h.call(command.Insert, command.Args{}) // refused: no node
	got := logs.infoAttrs("mutating command")
	want := []struct{ cmd, target, ok string }{
		{command.Insert, x.String(), "true"}, {command.MInsert, "", "true"}, {command.Update, x.String(), "true"},
		{command.Remove, x.String(), "true"}, {command.MRemove, "", "true"}, {command.Meet, x.String(), "true"},
		{command.Join, "other", ""}, {command.Leave, "", ""}, {command.Insert, "", "false"},
	}
	if len(got) != len(want) {
		t.Fatalf("logged %d mutating commands, want %d: %v", len(got), len(want), got)
	}
	addr := h.client.Addr() // the client's listener; its dials come from another port of the same host
	host := addr.(*net.TCPAddr).IP.String()
	for i, w := range want {
		g := got[i]
		if g["command"] != w.cmd || g["peer"] != h.client.Self().ID || !strings.HasPrefix(g["addr"], host+":") {
			t.Errorf("record %d = %v, want command %s from %s at %s:*", i, g, w.cmd, h.client.Self().ID, host)
		}
		if g["target"] != w.target || (w.ok != "" && g["ok"] != w.ok) {
			t.Errorf("record %d = %v, want target %q ok %s", i, g, w.target, w.ok)
		}
	}
	if got[4]["targets"] != "1" || got[4]["first"] != y.String() {
		t.Errorf("mremove record %v, want targets 1 first %s", got[4], y)
	}
	if got[3]["force"] != "true" {
		t.Errorf("forced remove record %v lacks force=true", got[3])
	}
	if got[8]["code"] != command.CodeBadRequest {
		t.Errorf("refused insert record %v lacks code %s", got[8], command.CodeBadRequest)
	}
}

// lookup answers the key's owner and preference list from this node's ring
// (pfactor+1 long by default), and refuses a missing or oversized key and a
// list length out of range without touching the ring.
func TestCommandLookup(t *testing.T) {
	h := newCmdHarness(t, 5*time.Second, false)
	for i, id := range []string{"a", "b", "c", "d"} {
		h.ring.ring.Insert(node(id, 7100+i), 0)
	}
	for _, c := range []struct {
		n, want int
	}{{0, h.ring.PFactor() + 1}, {1, 1}, {2, 2}, {command.MaxLookupN, 5}} {
		d := decodeData[command.LookupData](t, h.call(command.Lookup, command.Args{Key: "user:42", N: c.n}))
		want := h.ring.ring.RangeNext([]byte("user:42"), c.want)
		owner, _ := h.ring.ring.OwnerString("user:42")
		if d.Key != "user:42" || d.Owner == nil || *d.Owner != owner || !slices.Equal(d.Preference, want) {
			t.Fatalf("lookup n=%d = %+v, want owner %v, preference %v", c.n, d, owner, want)
		}
	}
	mustFail(t, h.call(command.Lookup, command.Args{}), command.CodeBadRequest, "Missing required 'key' parameter.")
	for name, a := range map[string]command.Args{
		"long key": {Key: strings.Repeat("k", command.MaxKeyLen+1)},
		"n > max":  {Key: "k", N: command.MaxLookupN + 1},
		"n < 0":    {Key: "k", N: -1},
	} {
		r := h.call(command.Lookup, a)
		if r.OK || r.Error.Code != command.CodeBadRequest || !strings.Contains(r.Error.Message, "invalid argument") {
			t.Fatalf("%s: %+v %+v, want BAD_REQUEST invalid argument", name, r, r.Error)
		}
	}
	d := decodeData[command.LookupData](t, h.call(command.Lookup, command.Args{Key: strings.Repeat("k", command.MaxKeyLen)}))
	if d.Owner == nil {
		t.Fatal("a key of MaxKeyLen bytes has no owner")
	}
}

// info reports the node, its build, uptime, ring size, health counts and
// the kernel's, gossip's and memberlist's transport counters.
func TestCommandInfo(t *testing.T) {
	h := newCmdHarness(t, 5*time.Second, false)
	h.cs.started = time.Now().Add(-90 * time.Second)
	h.cs.kernelStats = h.server.Stats
	h.cs.ringStats = func() gossip.Stats { return gossip.Stats{Merges: 7} }
	h.cs.transportStats = func() gossip.TransportStats {
		return gossip.TransportStats{PacketsIn: 3, StreamsOut: 2, RejectedStreams: 1}
	}
	d := decodeData[command.InfoData](t, h.call(command.Info, command.Args{}))
	if d.Node != h.server.Self() || d.Ring != "ring1" || d.Nodes != 1 || d.Tokens != 3 ||
		d.RFactor != 3 || d.PFactor != 2 || d.Health["alive"] != 1 {
		t.Fatalf("info = %+v", d)
	}
	if d.UptimeSeconds < 90 || d.UptimeSeconds > 3600 || !strings.HasPrefix(d.Uptime, "1m3") {
		t.Fatalf("uptime %q (%v s), want about 90 s", d.Uptime, d.UptimeSeconds)
	}
	if d.Version == "" || !strings.HasPrefix(d.Go, "go") {
		t.Fatalf("version %q, go %q", d.Version, d.Go)
	}
	var gs gossip.Stats
	if err := json.Unmarshal(d.Gossip, &gs); err != nil {
		t.Fatalf("gossip counters %s: %v", d.Gossip, err)
	}
	if d.Kernel == nil || d.Kernel.FramesIn == 0 || gs.Merges != 7 {
		t.Fatalf("counters: kernel %+v gossip %s", d.Kernel, d.Gossip)
	}
	var ms gossip.TransportStats
	if err := json.Unmarshal(d.Memberlist, &ms); err != nil ||
		ms != (gossip.TransportStats{PacketsIn: 3, StreamsOut: 2, RejectedStreams: 1}) {
		t.Fatalf("memberlist counters %s: %v", d.Memberlist, err)
	}
	for _, name := range []string{`"PacketsIn":3`, `"PacketsOut":0`, `"StreamsIn":0`, `"StreamsOut":2`, `"RejectedStreams":1`} {
		if !strings.Contains(string(d.Memberlist), name) {
			t.Fatalf("memberlist counters %s lack %s", d.Memberlist, name)
		}
	}

	// Ring counters without a transport source: no memberlist counters.
	// (Each case has a harness of its own: the command server reads its
	// fields on its own goroutine.)
	h = newCmdHarness(t, 5*time.Second, false)
	h.cs.ringStats = func() gossip.Stats { return gossip.Stats{} }
	if d := decodeData[command.InfoData](t, h.call(command.Info, command.Args{})); d.Gossip == nil || d.Memberlist != nil {
		t.Fatalf("info without a transport source: gossip %s memberlist %s", d.Gossip, d.Memberlist)
	}

	// No ring counters, no memberlist counters.
	h = newCmdHarness(t, 5*time.Second, false)
	if d := decodeData[command.InfoData](t, h.call(command.Info, command.Args{})); d.Gossip != nil || d.Memberlist != nil {
		t.Fatalf("info without ring counters: gossip %s memberlist %s", d.Gossip, d.Memberlist)
	}
}
