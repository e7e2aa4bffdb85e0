package gossip

// Checks that the gossip ring behaves as notp's does, operation by
// operation (construction, start and stop, join, meet, insert, update,
// remove, leave, find, poll, routing and receiving), and where this design
// deliberately differs, that it does what it does instead. notp internals
// with no counterpart here (streams, idle, deferral until idle,
// pause/resume, the kernel accessor) are not tested as such; the behaviour
// they protected is noted where it is tested instead.

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip/internal/codec"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/vclock"
)

type sentMsg struct {
	to notp.Node
	m  *codec.Message
}

// unit is a Ring in ring "ring" without memberlist, whose sends are
// captured instead of cast.
type unit struct {
	*tnode
	mu   sync.Mutex
	sent []sentMsg
}

func newUnit(t *testing.T, id string) *unit {
	t.Helper()
	n := newNode(t, id, func(c *Config) { c.Interval = time.Hour; c.FlushInterval = time.Hour })
	u := &unit{tnode: n}
	n.r.testSend = func(to notp.Node, b []byte) {
		m, err := codec.DecodeMessage(b)
		if err != nil {
			t.Errorf("sent an invalid message: %v", err)
			return
		}
		u.mu.Lock()
		u.sent = append(u.sent, sentMsg{to, m})
		u.mu.Unlock()
	}
	n.start("")
	n.r.mu.Lock()
	n.r.ringID, n.r.handler = "ring", handlerName("ring")
	n.r.mu.Unlock()
	return u
}

func (u *unit) takeSent() []sentMsg {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.sent
	u.sent = nil
	return s
}

// deliver hands the ring a message from node, as the kernel handler would,
// and returns the round the loop would forward with.
func (u *unit) deliver(from notp.Node, m *codec.Message) int {
	return u.r.process(kernel.Message{Name: handlerName("ring"), From: kernel.From{Node: from}, Data: codec.EncodeMessage(m)})
}

func peer(id string, port int) notp.Node { return notp.Node{ID: id, Host: "127.0.0.1", Port: port} }

// The constructor: no ring id, a ring of its own, options kept; the ring,
// clock and ring id accessors.
func TestRingConstructor(t *testing.T) {
	k := startKernel(t, "a", 0)
	t.Cleanup(func() { _ = k.Close() })
	r, err := New(k, Config{RFactor: 5, PFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.RingID() != "" || r.RFactor() != 5 || r.PFactor() != 1 {
		t.Fatalf("RingID %q RFactor %d PFactor %d", r.RingID(), r.RFactor(), r.PFactor())
	}
	if got := ringIDs(r); !slices.Equal(got, []string{"a"}) || r.View().Size() != 5 {
		t.Fatalf("initial ring %v size %d", got, r.View().Size())
	}
	c := r.Clock()
	c.Increment("zzz")
	if r.Clock().Has("zzz") {
		t.Fatal("Clock is not a copy")
	}
	if _, err := New(nil, Config{}); !errors.Is(err, ErrNilKernel) || !errors.Is(err, notp.ErrNilKernel) {
		t.Fatalf("New(nil) = %v, want ErrNilKernel", err)
	}
	for name, cfg := range map[string]Config{
		"negative interval":  {Interval: -1},
		"negative ttl":       {TombstoneTTL: -time.Second},
		"negative pfactor":   {PFactor: -1},
		"heavy rfactor":      {RFactor: MaxWeight + 1},
		"negative reconnect": {Reconnect: ReconnectConfig{First: -1}},
	} {
		if _, err := New(r.k, cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%s) = %v, want ErrInvalidConfig", name, err)
		}
	}
	if err := r.Insert(context.Background(), peer("b", 1), 0, false); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Insert before Start = %v", err)
	}
}

// Start sets the ring id, registers the handler and runs the timers. Stop
// does not leave the ring, unlike notp's stop (a restarted node comes back
// with its ring), yet clears the ring id in memory; the handler is gone;
// Stop is idempotent; operations then fail.
func TestRingStartStop(t *testing.T) {
	nodes := cluster(t, 2)
	a := nodes[0]
	if a.r.RingID() != "ring" {
		t.Fatalf("ring id %q", a.r.RingID())
	}
	if err := a.k.Register(handlerName("ring"), kernel.HandlerFunc(func(kernel.Message) {})); !errors.Is(err, kernel.ErrNameTaken) {
		t.Fatalf("handler not registered: %v", err)
	}
	sent := a.r.Stats().MessagesSent
	testutil.WaitFor(t, "the poll to send digests", func() bool { return a.r.Stats().MessagesSent > sent })
	if err := a.r.Start(ctx(t), "ring"); err == nil {
		t.Fatal("second Start succeeded")
	}
	for range 2 {
		if err := a.r.Stop(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if a.r.RingID() != "" {
		t.Fatalf("ring id after Stop = %q", a.r.RingID())
	}
	if err := a.k.Register(handlerName("ring"), kernel.HandlerFunc(func(kernel.Message) {})); err != nil {
		t.Fatalf("handler still registered after Stop: %v", err)
	}
	if err := a.r.Insert(ctx(t), peer("z", 1), 0, false); !errors.Is(err, ErrClosed) {
		t.Fatalf("Insert after Stop = %v", err)
	}
	// The other node still has a in its ring: Stop is not Leave.
	if got := ringIDs(nodes[1].r); !slices.Equal(got, []string{"n0", "n1"}) {
		t.Fatalf("peer ring after Stop = %v", got)
	}
}

// Leaving a one-node ring emits the leave event and clears the id.
func TestRingLeaveAlone(t *testing.T) {
	n := newNode(t, "a").start("ring")
	if err := n.r.Leave(ctx(t), false); err != nil {
		t.Fatal(err)
	}
	n.waitEvent(EventLeft, "a")
	if n.r.RingID() != "" {
		t.Fatalf("ring id %q", n.r.RingID())
	}
}

// Joining while in a ring is an error with notp's message.
func TestRingJoinInRing(t *testing.T) {
	n := newNode(t, "a").start("ring")
	err := n.r.Join("other")
	if !errors.Is(err, ErrAlreadyInRing) || err.Error() != "gossip: already in a ring: Node already belongs to ring 'ring'" {
		t.Fatalf("Join = %v", err)
	}
	if err := n.r.Join("bad id"); !errors.Is(err, ErrInvalidRingID) {
		t.Fatalf("Join of an invalid id = %v", err)
	}
}

// Meeting a current member sends nothing on the ring. Meet sends a join
// (round 0) carrying the local ring and clock and leaves the local state
// unchanged; emits send. (notp advanced the clock under a fresh UUID actor
// for each change; here the actor is always the node ID.)
func TestRingMeet(t *testing.T) {
	a := newNode(t, "a").start("ring")
	b := newNode(t, "b")
	var mu sync.Mutex
	var sent []sentMsg
	b.r.testSend = func(to notp.Node, m []byte) {
		msg, err := codec.DecodeMessage(m)
		if err != nil {
			t.Error(err)
		}
		if msg.Type != codec.MsgJoin {
			return // digest answers and polls
		}
		mu.Lock()
		sent = append(sent, sentMsg{to, msg})
		mu.Unlock()
	}
	b.start("ring")
	clock, ring := b.r.Clock(), b.r.View()
	if err := b.r.Meet(ctx(t), a.self()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(sent) != 1 || sent[0].to != a.self() || sent[0].m.Type != codec.MsgJoin || sent[0].m.Round != 0 ||
		!sent[0].m.Clock.Descends(clock) ||
		!slices.ContainsFunc(sent[0].m.Entries, func(e codec.Entry) bool { return e.Node == b.self() && !e.Removed }) {
		t.Fatalf("sent %+v", sent[0].m)
	}
	mu.Unlock()
	// memberlist's join exchange (push/pull) may already have merged a's
	// state; besides that Meet writes nothing: b's own clock entry and
	// its ring's own node are unchanged.
	if b.r.Clock().Count("b") != clock.Count("b") || !slices.Contains(b.r.View().Nodes(), b.self()) || ring.Size() != b.r.RFactor() {
		t.Fatal("Meet changed the local state")
	}
	b.waitEvent(EventSend, "a")

	// Meeting a current member sends nothing (between admitted members: u's
	// own entry is written first).
	u := newUnit(t, "u")
	if err := u.r.Update(ctx(t), u.self(), 0, false); err != nil {
		t.Fatal(err)
	}
	if err := u.r.Insert(ctx(t), peer("m", 1), 0, false); err != nil {
		t.Fatal(err)
	}
	u.takeSent()
	if err := u.r.Meet(ctx(t), peer("m", 1)); err != nil {
		t.Fatal(err)
	}
	if s := u.takeSent(); len(s) != 0 {
		t.Fatalf("meeting a member sent %v", s)
	}
	if err := u.r.Meet(ctx(t), notp.Node{ID: "bad"}); !errors.Is(err, ErrInvalidNode) {
		t.Fatalf("Meet of an invalid node = %v", err)
	}
}

// Inserting a present id does nothing. Insert applies the weight, advances
// this node's own clock entry (the actor is the node ID, so the clock does
// not grow with every change), connects, emits inserted and send, and sends
// an update with round maxRounds-1. notp deferred changes until the ring
// was idle unless forced; here changes always apply at once.
func TestRingInsert(t *testing.T) {
	u := newUnit(t, "u")
	before := u.r.Clock().Count("u")
	b := peer("b", 1)
	if err := u.r.Insert(ctx(t), b, 4, false); err != nil {
		t.Fatal(err)
	}
	if w := u.r.View().Weights()["b"]; w != 4 {
		t.Fatalf("weight %d", w)
	}
	c := u.r.Clock()
	if c.Count("u") != before+1 || c.Size() != 1 {
		t.Fatalf("clock %v", c)
	}
	if !slices.ContainsFunc(u.k.Peers(), func(n notp.Node) bool { return n.ID == "b" }) {
		t.Fatal("kernel not connected to the inserted node")
	}
	u.waitEvent(EventInserted, "b")
	u.waitEvent(EventSend, "b")
	sent := u.takeSent()
	if len(sent) != 1 || sent[0].to != b || sent[0].m.Type != codec.MsgUpdate || sent[0].m.Round != maxRounds(2)-1 {
		t.Fatalf("sent %+v", sent)
	}
	// Inserting a present id does nothing.
	if err := u.r.Insert(ctx(t), notp.Node{ID: "b", Host: "other", Port: 2}, 9, true); err != nil {
		t.Fatal(err)
	}
	if u.r.Clock().Count("u") != before+1 || len(u.takeSent()) != 0 || u.r.View().Weights()["b"] != 4 {
		t.Fatal("insert of a present id changed something")
	}
	// Forced insert with weight 4 (force changes nothing for inserts).
	if err := u.r.Insert(ctx(t), peer("c", 2), 4, true); err != nil || u.r.View().Weights()["c"] != 4 {
		t.Fatalf("forced insert: %v", err)
	}
	for _, bad := range []struct {
		n notp.Node
		w int
	}{{notp.Node{ID: "x"}, 1}, {peer("x", 1), MaxWeight + 1}} {
		if err := u.r.Insert(ctx(t), bad.n, bad.w, false); err == nil {
			t.Fatalf("Insert(%v, %d) succeeded", bad.n, bad.w)
		}
	}
}

// Update of an absent node inserts it; update of a present node changes its
// weight and emits updated, so subscribers learn of the change.
func TestRingUpdate(t *testing.T) {
	u := newUnit(t, "u")
	if err := u.r.Update(ctx(t), peer("b", 1), 2, false); err != nil {
		t.Fatal(err)
	}
	u.waitEvent(EventInserted, "b")
	if err := u.r.Update(ctx(t), peer("b", 5), 6, false); err != nil {
		t.Fatal(err)
	}
	u.waitEvent(EventUpdated, "b")
	if n, _ := u.r.View().Get("b"); n.Port != 5 || u.r.View().Weights()["b"] != 6 {
		t.Fatalf("after update: %v weight %d", n, u.r.View().Weights()["b"])
	}
	if u.r.Clock().Count("u") != 2 {
		t.Fatalf("clock %v", u.r.Clock())
	}
}

// MInsert of present nodes does nothing; MInsert inserts the absent ones
// with one clock increment.
func TestRingMInsert(t *testing.T) {
	u := newUnit(t, "u")
	if err := u.r.MInsert(ctx(t), []notp.Node{peer("b", 1), peer("c", 2)}, 0, false); err != nil {
		t.Fatal(err)
	}
	if got := ringIDs(u.r); !slices.Equal(got, []string{"b", "c", "u"}) || u.r.Clock().Count("u") != 1 {
		t.Fatalf("ring %v clock %v", got, u.r.Clock())
	}
	u.takeSent()
	if err := u.r.MInsert(ctx(t), []notp.Node{peer("b", 1), peer("c", 2)}, 0, false); err != nil {
		t.Fatal(err)
	}
	if u.r.Clock().Count("u") != 1 || len(u.takeSent()) != 0 {
		t.Fatal("minsert of present nodes changed something")
	}
	if err := u.r.MInsert(ctx(t), []notp.Node{peer("b", 1), peer("d", 3)}, 0, false); err != nil {
		t.Fatal(err)
	}
	if got := ringIDs(u.r); !slices.Equal(got, []string{"b", "c", "d", "u"}) {
		t.Fatalf("ring %v", got)
	}
}

// Removing an absent node does nothing; Remove drops it, advances the
// clock, tells the removed node (which notp never did, leaving it to believe
// it was still a member) and disconnects it; MRemove likewise. Removing this
// node is refused (use Leave).
func TestRingRemove(t *testing.T) {
	u := newUnit(t, "u")
	if err := u.r.MInsert(ctx(t), []notp.Node{peer("b", 1), peer("c", 2), peer("d", 3)}, 0, false); err != nil {
		t.Fatal(err)
	}
	u.takeSent()
	if err := u.r.Remove(ctx(t), peer("zz", 9), false); err != nil || len(u.takeSent()) != 0 || u.r.Clock().Count("u") != 1 {
		t.Fatalf("remove of an absent node: %v", err)
	}
	if err := u.r.Remove(ctx(t), peer("b", 1), true); err != nil {
		t.Fatal(err)
	}
	if got := ringIDs(u.r); !slices.Equal(got, []string{"c", "d", "u"}) || u.r.Clock().Count("u") != 2 {
		t.Fatalf("ring %v clock %v", got, u.r.Clock())
	}
	told := false
	for _, s := range u.takeSent() {
		if s.to.ID == "b" {
			told = true
			if i := slices.IndexFunc(s.m.Entries, func(e codec.Entry) bool { return e.Node.ID == "b" }); i < 0 || !s.m.Entries[i].Removed {
				t.Fatalf("notification lacks b's tombstone: %v", s.m.Entries)
			}
		}
	}
	if !told {
		t.Fatal("the removed node was not told")
	}
	if slices.ContainsFunc(u.k.Peers(), func(n notp.Node) bool { return n.ID == "b" }) {
		t.Fatal("removed node still connected")
	}
	u.waitEvent(EventRemoved, "b")
	// MRemove
	if err := u.r.MRemove(ctx(t), []notp.Node{peer("x", 1), peer("y", 1)}, false); err != nil || u.r.Clock().Count("u") != 2 {
		t.Fatalf("mremove of absent nodes: %v", err)
	}
	if err := u.r.MRemove(ctx(t), []notp.Node{peer("c", 2), peer("d", 3), peer("x", 1)}, true); err != nil {
		t.Fatal(err)
	}
	if got := ringIDs(u.r); !slices.Equal(got, []string{"u"}) || u.r.Clock().Count("u") != 3 {
		t.Fatalf("ring %v clock %v", got, u.r.Clock())
	}
	if err := u.r.Remove(ctx(t), u.self(), false); err == nil {
		t.Fatal("removing this node succeeded")
	}
}

// Leave, forced or not: the leave announcement carries the ring
// with this node removed and a clock descending the old one, goes to
// members only, with round maxRounds(n-1)-1; afterwards the ring is this
// node alone (rfactor tokens), the clock has one actor (this node: the
// fresh leave actor of notp is gone), the ring id is cleared.
func TestRingLeaveMessage(t *testing.T) {
	u := newUnit(t, "u")
	if err := u.r.MInsert(ctx(t), []notp.Node{peer("b", 1), peer("c", 2)}, 0, false); err != nil {
		t.Fatal(err)
	}
	u.takeSent()
	old := u.r.Clock()
	if err := u.r.Leave(ctx(t), true); err != nil {
		t.Fatal(err)
	}
	sent := u.takeSent()
	if len(sent) == 0 || len(sent) > Fanout {
		t.Fatalf("sent %d messages", len(sent))
	}
	for _, s := range sent {
		if s.to.ID == "u" || s.m.Type != codec.MsgLeave || s.m.Round != maxRounds(2)-1 || !s.m.Clock.Descends(old) ||
			s.m.Clock.Compare(old) != vclock.After {
			t.Fatalf("leave message %+v to %v", s.m, s.to)
		}
		i := slices.IndexFunc(s.m.Entries, func(e codec.Entry) bool { return e.Node.ID == "u" })
		if i < 0 || !s.m.Entries[i].Removed {
			t.Fatal("announced ring still has the leaving node")
		}
	}
	if u.r.RingID() != "" || !slices.Equal(ringIDs(u.r), []string{"u"}) || u.r.View().Size() != u.r.RFactor() {
		t.Fatalf("after leave: %q %v", u.r.RingID(), ringIDs(u.r))
	}
	if c := u.r.Clock(); c.Size() != 1 || !c.Has("u") {
		t.Fatalf("clock after leave %v", c)
	}
	u.waitEvent(EventLeft, "u")
}

// Neighbourhood and PreferenceList on a one-node ring, with their default
// and an explicit size. Neighbourhood without a size returns the owner and
// its pfactor neighbours (pfactor+1 nodes), as its doc says; a View taken
// before a change keeps answering from the ring it saw.
func TestRingNeighbourhoodPreferenceList(t *testing.T) {
	u := newUnit(t, "u")
	if got := u.r.Neighbourhood([]byte("k"), 0); len(got) != 1 || got[0].ID != "u" {
		t.Fatalf("Neighbourhood = %v", got)
	}
	if got := u.r.PreferenceList([]byte("k"), 0); len(got) != 1 || got[0].ID != "u" {
		t.Fatalf("PreferenceList = %v", got)
	}
	before := u.r.View()
	if err := u.r.MInsert(ctx(t), []notp.Node{peer("b", 1), peer("c", 2), peer("d", 3)}, 0, false); err != nil {
		t.Fatal(err)
	}
	if before.NumberNodes() != 1 || len(before.PreferenceList([]byte("k"), 10)) != 1 {
		t.Fatalf("a View changed with the ring: %v", before.Nodes())
	}
	if got := u.r.PreferenceList([]byte("k"), 1); len(got) != 1 {
		t.Fatalf("PreferenceList size 1 = %v", got)
	}
	f := u.r.Neighbourhood([]byte("k"), 0)
	if len(f) != u.r.PFactor()+1 {
		t.Fatalf("Neighbourhood default size = %v", f)
	}
	v := u.r.View()
	owner, _ := v.Owner([]byte("k"))
	if f[0] != owner || !slices.Equal(f[1:], v.Neighbours(owner.ID, 2)) || !slices.Equal(f[1:], v.Neighbours(owner.ID, 0)) {
		t.Fatalf("Neighbourhood = %v, owner %v", f, owner)
	}
	if got, want := u.r.PreferenceList([]byte("k"), 0), v.PreferenceList([]byte("k"), u.r.PFactor()+1); !slices.Equal(got, want) || got[0] != owner {
		t.Fatalf("PreferenceList default = %v, want %v", got, want)
	}
	if got := u.r.PreferenceList([]byte("k"), 10); len(got) != 4 {
		t.Fatalf("PreferenceList clamps: %v", got)
	}
	var zero View
	if _, ok := zero.Owner([]byte("k")); ok || zero.PreferenceList([]byte("k"), 3) != nil || zero.NumberNodes() != 0 {
		t.Fatal("the zero View is not an empty ring")
	}
}

// A node alone sends nothing on poll; with members the
// poll sends a checksum of its clock (no clock, no entries) to one random
// live member.
func TestRingPoll(t *testing.T) {
	u := newUnit(t, "u")
	u.r.poll()
	if s := u.takeSent(); len(s) != 0 {
		t.Fatalf("poll alone sent %v", s)
	}
	if err := u.r.Insert(ctx(t), peer("b", 1), 0, false); err != nil {
		t.Fatal(err)
	}
	u.takeSent()
	u.r.poll()
	s := u.takeSent()
	if len(s) != 1 || s[0].m.Type != codec.MsgSum || len(s[0].m.Entries) != 0 || s[0].m.Clock != nil ||
		s[0].m.Sum != codec.ClockSum(u.r.Clock()) {
		t.Fatalf("poll sent %+v", s)
	}
}

// The idle poll's checksum: an equal sum gets no answer; a different one
// gets the receiver's full digest, which leads to the usual state/pull
// exchange. Zero counts do not change the sum (Descends ignores them).
func TestPollSum(t *testing.T) {
	u := newUnit(t, "u")
	if err := u.r.Insert(ctx(t), peer("b", 1), 0, false); err != nil {
		t.Fatal(err)
	}
	u.takeSent()
	mine := codec.ClockSum(u.r.Clock())
	u.deliver(peer("b", 1), &codec.Message{Type: codec.MsgSum, Ring: "ring", Sum: mine})
	if s := u.takeSent(); len(s) != 0 {
		t.Fatalf("equal sum answered with %+v", s)
	}
	u.deliver(peer("b", 1), &codec.Message{Type: codec.MsgSum, Ring: "ring", Sum: mine + 1})
	s := u.takeSent()
	if len(s) != 1 || s[0].to.ID != "b" || s[0].m.Type != codec.MsgDigest || !s[0].m.Clock.Equal(u.r.Clock()) {
		t.Fatalf("different sum answered with %+v, want our digest", s)
	}

	a, b := vclock.New(), vclock.New()
	a.Increment("x")
	b.Increment("x")
	b.Insert("zero") // count 0
	if codec.ClockSum(a) != codec.ClockSum(b) {
		t.Fatal("a zero count changed the sum")
	}
	b.Increment("y")
	if codec.ClockSum(a) == codec.ClockSum(b) {
		t.Fatal("sums of different clocks are equal")
	}
}

// Routing with round 0 sends nothing, a one-node ring sends nothing, round
// n sends an update with round n-1. Targets are distinct members, never
// this node.
func TestRingRoute(t *testing.T) {
	u := newUnit(t, "u")
	u.r.mu.Lock()
	if out := u.r.routeLocked(3); len(out) != 0 {
		t.Fatalf("one-node ring routed %v", out)
	}
	u.r.mu.Unlock()
	if err := u.r.MInsert(ctx(t), []notp.Node{peer("b", 1), peer("c", 2), peer("d", 3)}, 0, false); err != nil {
		t.Fatal(err)
	}
	u.r.mu.Lock()
	defer u.r.mu.Unlock()
	if out := u.r.routeLocked(0); len(out) != 0 {
		t.Fatalf("round 0 routed %v", out)
	}
	out := u.r.routeLocked(1)
	m, err := codec.DecodeMessage(out[0].msg)
	if len(out) != 1 || len(out[0].to) != Fanout || err != nil || m.Round != 0 || m.Type != codec.MsgUpdate {
		t.Fatalf("route(1) = %v, %v", out, err)
	}
	for range 50 {
		ts := u.r.targetsLocked(2)
		if len(ts) != 2 || ts[0].ID == ts[1].ID || ts[0].ID == "u" || ts[1].ID == "u" {
			t.Fatalf("targets %v", ts)
		}
		if ts := u.r.targetsLocked(10); len(ts) != 3 {
			t.Fatalf("targets(10) = %v", ts)
		}
	}
}

// An update with an identical state changes nothing (no events) and is
// forwarded with the message round (the loop forwards with round-1).
// Receiving never increments a clock entry, unlike notp, so gossip passing
// through a node does not count as its change. A concurrent remote state
// emits conflict and both sides' changes survive, where notp's whole-ring
// last-writer-wins kept one side only.
func TestRingReceive(t *testing.T) {
	u := newUnit(t, "u")
	if err := u.r.MInsert(ctx(t), []notp.Node{peer("b", 1), peer("c", 2)}, 0, false); err != nil {
		t.Fatal(err)
	}
	u.takeSent()
	u.r.mu.Lock()
	same := &codec.Message{Type: codec.MsgUpdate, Ring: "ring", Round: 2, Clock: u.r.st.clock.Clone(), Entries: u.r.st.sortedEntries()}
	u.r.mu.Unlock()
	clock, ring := u.r.Clock(), u.r.View()
	if fwd := u.deliver(peer("b", 1), same); fwd != 2 {
		t.Fatalf("identical update forwarded with round %d, want 2", fwd)
	}
	if !u.r.Clock().Equal(clock) || u.r.View() != ring {
		t.Fatal("identical update changed the state")
	}
	if s := u.takeSent(); len(s) != 0 {
		t.Fatalf("sent %+v", s)
	}

	// Concurrent: b's state has a change u has not seen, and u has one b
	// has not seen.
	if err := u.r.Insert(ctx(t), peer("d", 4), 0, false); err != nil {
		t.Fatal(err)
	}
	u.takeSent()
	remote := &state{entries: map[string]codec.Entry{}, clock: same.Clock.Clone()}
	for _, e := range same.Entries {
		remote.entries[e.Node.ID] = e
	}
	remote.write("b", peer("e", 5), 2, false, time.Now())
	remote.clock.Increment("b")
	if fwd := u.deliver(peer("b", 1), &codec.Message{Type: codec.MsgUpdate, Ring: "ring", Round: 2, Clock: remote.clock, Entries: remote.sortedEntries()}); fwd != 2 {
		t.Fatalf("news forwarded with round %d, want 2", fwd)
	}
	u.r.forward(2)
	if s := u.takeSent(); len(s) != Fanout || s[0].m.Round != 1 || s[1].m.Round != 1 {
		t.Fatalf("forwarded %+v", s)
	}
	if got := ringIDs(u.r); !slices.Equal(got, []string{"b", "c", "d", "e", "u"}) {
		t.Fatalf("after concurrent merge: %v", got)
	}
	u.waitEvent(EventConflict, "e")
	u.waitEvent(EventInserted, "e")
	c := u.r.Clock()
	if c.Count("b") != 1 || c.Count("u") != 2 || !c.Descends(remote.clock) {
		t.Fatalf("merged clock %v (receiving must not increment)", c)
	}
	if st := u.r.Stats(); st.Conflicts != 1 || st.Merges != 1 {
		t.Fatalf("stats %+v", st)
	}

	// A message for another ring or an invalid one is rejected and counted.
	rej := u.r.Stats().MessagesRejected
	u.deliver(peer("b", 1), &codec.Message{Type: codec.MsgUpdate, Ring: "other", Clock: vclock.New()})
	u.r.process(kernel.Message{From: kernel.From{Node: peer("b", 1)}, Data: []byte("junk")})
	if u.r.Stats().MessagesRejected != rej+2 {
		t.Fatal("rejections not counted")
	}
}

// A join is a union — nodes live on either side stay live, even against a
// tombstone — and the sender gets the union back. Instead of spreading the
// join with round maxRounds to two random members as notp did (which misses
// ~8% of them until the next digest), the receiver sends the union to every
// other live member in one hop.
func TestRingJoinUnion(t *testing.T) {
	u := newUnit(t, "u")
	if err := u.r.MInsert(ctx(t), []notp.Node{peer("b", 1), peer("x", 7)}, 0, false); err != nil {
		t.Fatal(err)
	}
	if err := u.r.Remove(ctx(t), peer("x", 7), true); err != nil {
		t.Fatal(err)
	}
	u.takeSent()
	jc := vclock.New()
	jc.Increment("x")
	fwd := u.deliver(peer("x", 7), &codec.Message{Type: codec.MsgJoin, Ring: "ring", Clock: jc,
		Entries: []codec.Entry{{Node: peer("x", 7), Weight: 3, Version: 0, Writer: "x"}, ent("y", 1, "x", false, 3)}})
	if fwd != 0 {
		t.Fatalf("join forwarded with round %d, want 0 (sent to everyone instead)", fwd)
	}
	if got := ringIDs(u.r); !slices.Equal(got, []string{"b", "u", "x", "y"}) {
		t.Fatalf("after join: %v", got)
	}
	got := map[string]int{}
	for _, s := range u.takeSent() {
		if s.m.Round != 0 || len(s.m.Entries) != 4 {
			t.Fatalf("sent %+v to %s, want the union with round 0", s.m, s.to.ID)
		}
		got[s.to.ID]++
	}
	if want := map[string]int{"x": 1, "b": 1, "y": 1}; !maps.Equal(got, want) {
		t.Fatalf("join answered and spread to %v, want %v", got, want)
	}
}

// A zombie (a removed node still gossiping its old state) is ignored and
// sent the current state, so it learns of its removal.
func TestZombieIgnored(t *testing.T) {
	u := newUnit(t, "u")
	z := peer("z", 9)
	if err := u.r.MInsert(ctx(t), []notp.Node{peer("b", 1), z}, 0, false); err != nil {
		t.Fatal(err)
	}
	u.r.mu.Lock()
	stale := &codec.Message{Type: codec.MsgUpdate, Ring: "ring", Clock: u.r.st.clock.Clone(), Entries: u.r.st.sortedEntries()}
	u.r.mu.Unlock()
	if err := u.r.Remove(ctx(t), z, true); err != nil {
		t.Fatal(err)
	}
	u.takeSent()
	u.deliver(z, stale)
	if got := ringIDs(u.r); slices.Contains(got, "z") {
		t.Fatalf("zombie resurrected: %v", got)
	}
	s := u.takeSent()
	if !slices.ContainsFunc(s, func(m sentMsg) bool { return m.to.ID == "z" }) {
		t.Fatalf("zombie not told: %v", s)
	}
}

// Events never block the ring: a full subscriber drops and counts.
func TestEventsDropWhenFull(t *testing.T) {
	u := newUnit(t, "u")
	_, cancel := u.r.Subscribe(1)
	defer cancel()
	for _, id := range []string{"b", "c"} {
		if err := u.r.Insert(ctx(t), peer(id, 1), 0, false); err != nil {
			t.Fatal(err)
		}
	}
	if u.r.Stats().EventsDropped == 0 {
		t.Fatal("no drop counted")
	}
	cancel()
	cancel() // idempotent
}

// A subscription asked with a zero buffer gets the default room instead
// of losing every event its reader is not already waiting for.
func TestEventsZeroBufferKeepsEvents(t *testing.T) {
	u := newUnit(t, "u")
	events, cancel := u.r.Subscribe(0)
	defer cancel()
	if err := u.r.Insert(ctx(t), peer("b", 1), 0, false); err != nil {
		t.Fatal(err)
	}
	if d := u.r.Stats().EventsDropped; d != 0 {
		t.Fatalf("%d events dropped with a zero buffer", d)
	}
	if ev := <-events; ev.Kind != EventInserted {
		t.Fatalf("first event %v, want inserted", ev.Kind)
	}
}

func TestHealthText(t *testing.T) {
	for h, want := range map[Health]string{HealthUnknown: "unknown", HealthAlive: "alive", HealthSuspect: "suspect",
		HealthDead: "dead", HealthLeft: "left"} {
		b, _ := h.MarshalText()
		if h.String() != want || string(b) != want {
			t.Errorf("%d: %q %q", h, h.String(), b)
		}
	}
	if EventSelfRemoved.String() != "self-removed" || EventKind(200).String() != "event(200)" {
		t.Error("EventKind.String")
	}
}

// An unacknowledged leave announcement is an error, so the caller knows the
// others may not have heard, yet the node has left.
func TestLeaveUnacknowledged(t *testing.T) {
	nodes := cluster(t, 2)
	nodes[1].close()
	c, cancel := context.WithTimeout(ctx(t), 300*time.Millisecond)
	defer cancel()
	if err := nodes[0].r.Leave(c, false); err == nil {
		t.Fatal("Leave with no member alive succeeded")
	}
	if nodes[0].r.RingID() != "" || !slices.Equal(ringIDs(nodes[0].r), []string{"n0"}) {
		t.Fatalf("after Leave: %q %v", nodes[0].r.RingID(), ringIDs(nodes[0].r))
	}
	nodes[0].waitEvent(EventLeft, "n0")
}

// LazyConnect: inserting a node opens no kernel link; notp's default does.
func TestLazyConnect(t *testing.T) {
	lazy := newNode(t, "a", func(c *Config) { c.LazyConnect = true; c.Interval = time.Hour }).start("")
	if err := lazy.r.Insert(ctx(t), peer("b", 1), 0, false); err != nil {
		t.Fatal(err)
	}
	if len(lazy.k.Peers()) != 0 {
		t.Fatalf("lazy ring connected to %v", lazy.k.Peers())
	}
}

// memberlist's hooks validate what they decode: garbage or another ring's
// state is rejected and counted, garbage meta is an error, never a panic.
func TestMemberlistDelegateValidation(t *testing.T) {
	u := newUnit(t, "u")
	d := &mlDelegate{r: u.r, ringID: "ring"}
	rej := u.r.Stats().MessagesRejected
	d.MergeRemoteState([]byte("garbage"), true)
	d.MergeRemoteState(codec.EncodeMessage(&codec.Message{Type: codec.MsgUpdate, Ring: "other", Clock: vclock.New()}), false)
	d.MergeRemoteState(codec.EncodeMessage(&codec.Message{Type: codec.MsgDigest, Ring: "ring", Clock: vclock.New()}), false)
	d.MergeRemoteState(nil, false)
	if got := u.r.Stats().MessagesRejected - rej; got != 3 {
		t.Fatalf("rejected %d, want 3", got)
	}
	c := vclock.New()
	c.Increment("p")
	d.MergeRemoteState(codec.EncodeMessage(&codec.Message{Type: codec.MsgUpdate, Ring: "ring", Clock: c,
		Entries: []codec.Entry{ent("p", 1, "p", false, 2)}}), true)
	if !slices.Contains(ringIDs(u.r), "p") || u.r.Stats().PushPulls != 1 {
		t.Fatalf("push/pull state not merged: %v", ringIDs(u.r))
	}
	if b := d.LocalState(false); b == nil {
		t.Fatal("no local state")
	} else if m, err := codec.DecodeMessage(b); err != nil || len(m.Entries) != 2 {
		t.Fatalf("local state %v, %v", m, err)
	}
	for _, meta := range [][]byte{nil, []byte("\xc1"), mustMarshal(&nodeMeta{Ring: "other"})} {
		if err := d.NotifyAlive(&memberlist.Node{Name: "x", Meta: meta}); err == nil {
			t.Errorf("meta %q accepted", meta)
		}
	}
	if err := d.NotifyMerge([]*memberlist.Node{{Name: "y", Meta: mustMarshal(&nodeMeta{Ring: "ring"})}}); err != nil {
		t.Fatalf("same ring refused: %v", err)
	}
}

// The poll's safety net: a published ring out of step with the entries is
// rebuilt from them, counted, and reported as events.
func TestPollRepairsRing(t *testing.T) {
	u := newUnit(t, "u")
	if err := u.r.MInsert(ctx(t), []notp.Node{peer("b", 1), peer("c", 2)}, 0, false); err != nil {
		t.Fatal(err)
	}
	u.r.poll() // checks the current generation: nothing to repair
	if u.r.Stats().RingRepairs != 0 {
		t.Fatal("a consistent ring was repaired")
	}
	events, cancel := u.r.Subscribe(8)
	defer cancel()
	broken := u.r.View().Clone()
	broken.Remove("b")
	broken.Insert(peer("ghost", 9), 3)
	u.r.mu.Lock()
	u.r.ring.Store(broken)
	u.r.touchLocked()
	u.r.mu.Unlock()
	u.r.poll()
	if got := ringIDs(u.r); !slices.Equal(got, []string{"b", "c", "u"}) {
		t.Fatalf("after repair: %v", got)
	}
	if u.r.Stats().RingRepairs != 1 {
		t.Fatalf("RingRepairs = %d", u.r.Stats().RingRepairs)
	}
	seen := map[EventKind]string{}
	for len(seen) < 2 {
		select {
		case e := <-events:
			if e.Kind == EventInserted || e.Kind == EventRemoved {
				seen[e.Kind] = e.Nodes[0].ID
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("events %v", seen)
		}
	}
	if seen[EventInserted] != "b" || seen[EventRemoved] != "ghost" {
		t.Fatalf("events %v", seen)
	}
}

// A node whose failure detector reports every member dead keeps polling
// (it is more likely the one cut off); a dead member is skipped while a
// healthy one exists.
func TestPollWhenAllDead(t *testing.T) {
	u := newUnit(t, "u")
	if err := u.r.MInsert(ctx(t), []notp.Node{peer("b", 1), peer("c", 2)}, 0, false); err != nil {
		t.Fatal(err)
	}
	u.takeSent()
	u.r.healthMu.Lock()
	u.r.health["b"] = HealthDead
	u.r.healthMu.Unlock()
	for range 20 {
		u.r.poll()
		for _, s := range u.takeSent() {
			if s.to.ID != "c" {
				t.Fatalf("polled %s while c is healthy", s.to.ID)
			}
		}
	}
	u.r.healthMu.Lock()
	u.r.health["c"] = HealthDead
	u.r.healthMu.Unlock()
	u.r.poll()
	if s := u.takeSent(); len(s) != 1 || s[0].m.Type != codec.MsgSum {
		t.Fatalf("with every member dead the poll sent %+v, want one checksum", s)
	}
}

// Close stops a ring in a ring at once: the state is flushed, later
// operations fail with ErrClosed, and a second Close is a no-op.
func TestRingClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	n := newNode(t, "a", func(c *Config) { c.FlushPath = path }).start("ring")
	if err := n.r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Close did not flush the state: %v", err)
	}
	err := n.r.Insert(context.Background(), peer("b", 1), 0, false)
	if !errors.Is(err, ErrClosed) || !errors.Is(err, notp.ErrClosed) {
		t.Fatalf("Insert after Close = %v, want ErrClosed", err)
	}
	if err := n.r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
