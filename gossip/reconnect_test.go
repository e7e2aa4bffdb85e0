package gossip

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/kernel"
)

// fakeClock is a settable Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// scheduleRing is a Ring that never starts: its ring holds self and the
// given members, whose health the test sets.
func scheduleRing(t *testing.T, clk *fakeClock, rc ReconnectConfig, members ...string) *Ring {
	t.Helper()
	k, err := kernel.New(kernel.Config{Node: notp.Node{ID: "self", Host: "127.0.0.1", Port: 1}, Cookie: testCookie})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	r, err := New(k, Config{Now: clk.now, Reconnect: rc, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	for i, id := range members {
		r.st.write("self", notp.Node{ID: id, Host: "127.0.0.1", Port: 100 + i}, 3, false, clk.now())
	}
	r.touchLocked()
	r.publishRingLocked()
	r.mu.Unlock()
	return r
}

// setHealth sets id's health as memberlist's events would.
func (r *Ring) setHealthForTest(id string, h Health) {
	(&mlDelegate{r: r}).setHealth(id, h)
}

func dueIDs(r *Ring, now time.Time) ([]string, []reconnectPlan) {
	plans := r.dueReconnects(now)
	var ids []string
	for _, p := range plans {
		ids = append(ids, p.node.ID)
	}
	slices.Sort(ids)
	return ids, plans
}

// Which members the loop retries: dead ones after First, unknown ones at
// once; alive, suspect and left ones never, nor this node.
func TestReconnectPicksDeadAndUnknownOnly(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	rc := ReconnectConfig{First: 2 * time.Second, Interval: 30 * time.Second, Jitter: -1}
	r := scheduleRing(t, clk, rc, "alive", "dead", "left", "suspect", "unknown")
	r.setHealthForTest("alive", HealthAlive)
	r.setHealthForTest("dead", HealthDead)
	r.setHealthForTest("left", HealthLeft)
	r.setHealthForTest("suspect", HealthSuspect)

	got, plans := dueIDs(r, clk.now())
	if want := []string{"unknown"}; !slices.Equal(got, want) {
		t.Fatalf("due at once: %v, want %v", got, want)
	}
	evs, cancel := r.Subscribe(4)
	defer cancel()
	r.reconnectDone(plans[0], plans[0].node.Addr(), true, nil)
	if ev := <-evs; ev.Kind != EventReconnected || len(ev.Nodes) != 1 || ev.Nodes[0].ID != "unknown" {
		t.Fatalf("event after reaching unknown: %v %v, want reconnected [unknown]", ev.Kind, ev.Nodes)
	}
	if got, _ := dueIDs(r, clk.advance(time.Second)); len(got) != 0 {
		t.Fatalf("due 1 s after a member died: %v, want none before First", got)
	}
	// unknown was reached but memberlist has not reported it alive: it is
	// retried after First too.
	if got, _ := dueIDs(r, clk.advance(time.Second+time.Millisecond)); !slices.Equal(got, []string{"dead", "unknown"}) {
		t.Fatalf("due once First passed: %v, want [dead unknown]", got)
	}
	if s := r.Stats(); s.Reconnects != 1 {
		t.Fatalf("Stats.Reconnects = %d, want 1", s.Reconnects)
	}
}

// A member that answers no join backs off, doubling from First up to
// Interval.
func TestReconnectBacksOffPerMember(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	rc := ReconnectConfig{First: time.Second, Interval: 5 * time.Second, Jitter: -1}
	r := scheduleRing(t, clk, rc, "d")
	r.setHealthForTest("d", HealthDead)
	var waits []time.Duration
	last := clk.now()
	for range 6 {
		// Step 100 ms at a time to the next due time.
		for {
			now := clk.advance(100 * time.Millisecond)
			_, plans := dueIDs(r, now)
			if len(plans) == 0 {
				continue
			}
			if len(plans) != 1 || plans[0].node.ID != "d" {
				t.Fatalf("due: %+v", plans)
			}
			waits = append(waits, now.Sub(last).Round(100*time.Millisecond))
			last = now
			if again, _ := dueIDs(r, now); len(again) != 0 {
				t.Fatalf("in-flight member due twice: %v", again)
			}
			r.reconnectDone(plans[0], plans[0].node.Addr(), false, errors.New("refused"))
			break
		}
	}
	want := []time.Duration{1, 1, 2, 4, 5, 5}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(waits, want) {
		t.Fatalf("waits between attempts %v, want %v", waits, want)
	}
}

// Jitter keeps every delay within [1-Jitter, 1+Jitter] of its step.
func TestReconnectJitterBounds(t *testing.T) {
	rc, err := ReconnectConfig{Jitter: 0.2}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[bool]bool{}
	for range 1000 {
		d := rc.jittered(10 * time.Second)
		if d < 8*time.Second || d > 12*time.Second {
			t.Fatalf("jittered(10s) = %v, outside [8s, 12s]", d)
		}
		seen[d < 10*time.Second] = true
	}
	if !seen[true] || !seen[false] {
		t.Fatal("jitter never spread delays both ways")
	}
	if _, err := (ReconnectConfig{Jitter: 1}).withDefaults(); err == nil {
		t.Fatal("Jitter 1 accepted")
	}
	if _, err := (ReconnectConfig{First: -1}).withDefaults(); err == nil {
		t.Fatal("negative First accepted")
	}
}

// Removed members are forgotten by the loop; members past the horizon are
// no longer retried; a new ring address is tried at once.
func TestReconnectRemovedHorizonAndNewAddress(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	rc := ReconnectConfig{First: time.Second, Interval: 10 * time.Second, Jitter: -1, Horizon: time.Minute}
	r := scheduleRing(t, clk, rc, "gone", "far", "moved")
	for _, id := range []string{"gone", "far", "moved"} {
		r.setHealthForTest(id, HealthDead)
	}
	_, plans := dueIDs(r, clk.advance(time.Second+time.Millisecond))
	if len(plans) != 3 {
		t.Fatalf("due: %d plans, want 3", len(plans))
	}
	for _, p := range plans {
		r.reconnectDone(p, p.node.Addr(), false, errors.New("refused"))
	}

	// gone is removed from the ring; moved restarts at a new port.
	r.mu.Lock()
	r.st.write("self", notp.Node{ID: "gone", Host: "127.0.0.1", Port: 100}, 3, true, clk.now())
	r.st.write("self", notp.Node{ID: "moved", Host: "127.0.0.1", Port: 9999}, 3, false, clk.now())
	r.touchLocked()
	r.publishRingLocked()
	r.mu.Unlock()
	got, plans := dueIDs(r, clk.advance(100*time.Millisecond))
	if !slices.Equal(got, []string{"moved"}) {
		t.Fatalf("due right after the ring changed: %v, want [moved]", got)
	}
	if a := plans[0].node.Addr(); a != "127.0.0.1:9999" {
		t.Fatalf("moved retried at %s, want its new address", a)
	}
	r.reconnectDone(plans[0], plans[0].node.Addr(), false, errors.New("refused"))
	r.healthMu.Lock()
	_, tracked := r.reconn["gone"]
	r.healthMu.Unlock()
	if tracked {
		t.Fatal("a removed member is still tracked for reconnection")
	}

	// One dead member coming back makes the others due at once.
	r.mu.Lock()
	r.st.write("self", notp.Node{ID: "gone2", Host: "127.0.0.1", Port: 200}, 3, false, clk.now())
	r.touchLocked()
	r.publishRingLocked()
	r.mu.Unlock()
	r.setHealthForTest("gone2", HealthDead)
	if got, _ := dueIDs(r, clk.advance(100*time.Millisecond)); len(got) != 0 {
		t.Fatalf("due before any member came back: %v", got)
	}
	r.setHealthForTest("gone2", HealthAlive)
	if got, _ := dueIDs(r, clk.advance(time.Millisecond)); !slices.Equal(got, []string{"far", "moved"}) {
		t.Fatalf("due once a dead member came back: %v, want [far moved]", got)
	}
	for _, id := range []string{"far", "moved"} {
		r.healthMu.Lock()
		st := r.reconn[id]
		r.healthMu.Unlock()
		n, _ := r.View().Get(id)
		r.reconnectDone(reconnectPlan{node: n, st: st}, n.Addr(), false, errors.New("refused"))
	}

	// Past the horizon nothing is due, however long one waits.
	clk.advance(time.Minute)
	for range 20 {
		if got, _ := dueIDs(r, clk.advance(10*time.Second)); len(got) != 0 {
			t.Fatalf("due past the horizon: %v", got)
		}
	}
	// Seen alive again, then dead: a new record, retried again.
	r.setHealthForTest("far", HealthAlive)
	r.setHealthForTest("far", HealthDead)
	if got, _ := dueIDs(r, clk.advance(time.Second+time.Millisecond)); !slices.Equal(got, []string{"far"}) {
		t.Fatalf("due after dying again: %v, want [far]", got)
	}
}

// mlNode returns the address and state n's memberlist holds for id.
func mlNode(n *tnode, id string) (port uint16, state memberlist.NodeStateType, ok bool) {
	ml := n.r.mlRef.Load()
	if ml == nil {
		return 0, 0, false
	}
	for _, m := range ml.Members() {
		if m.Name == id {
			return m.Port, m.State, true
		}
	}
	return 0, 0, false
}

// The reclaim of a dead member's name for a new address never applies to
// a live member: a second process claiming a running node's ID from
// another port is refused by memberlist, which keeps the live member at
// its address, alive, while gossip goes on.
func TestLiveMemberNameCannotMove(t *testing.T) {
	nodes := cluster(t, 2)
	n0, n1 := nodes[0], nodes[1]
	eventually(t, 10*time.Second, "n0 sees n1 alive", func() bool { return n0.r.Health("n1") == HealthAlive })
	port := uint16(n1.self().Port)

	imp := newNode(t, "n1").start("ring")
	if imp.self().Port == int(port) {
		t.Fatal("the impostor got the live node's port")
	}
	if _, err := imp.r.mlRef.Load().Join([]string{n0.self().Addr()}); err != nil {
		t.Fatalf("impostor's memberlist join: %v", err)
	}
	// Let several push/pull exchanges and probes pass.
	base := n0.r.Stats().PushPulls
	eventually(t, 10*time.Second, "more push/pulls on n0", func() bool {
		p, st, ok := mlNode(n0, "n1")
		if !ok || p != port || st != memberlist.StateAlive {
			t.Fatalf("n0's memberlist holds n1 at port %d in state %v (present %v), want alive at %d", p, st, ok, port)
		}
		return n0.r.Stats().PushPulls >= base+5
	})
	if h := n0.r.Health("n1"); h != HealthAlive {
		t.Fatalf("n1's health on n0 = %v", h)
	}
}
