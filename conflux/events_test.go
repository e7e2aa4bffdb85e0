package conflux

import (
	"context"
	"slices"
	"testing"

	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
)

// nextEvent reads ch until an event that ok accepts arrives, and fails
// the test if the channel closes or ctx ends first.
func nextEvent(ctx context.Context, t *testing.T, ch <-chan Event, what string, ok func(Event) bool) Event {
	t.Helper()
	for {
		select {
		case e, open := <-ch:
			if !open {
				t.Fatalf("waiting for %s: channel closed", what)
			}
			if ok(e) {
				return e
			}
		case <-ctx.Done():
			t.Fatalf("no %s: %v", what, ctx.Err())
		}
	}
}

// subscribe subscribes to s's events with room for buf, until t's
// cleanup.
func subscribe(t *testing.T, s *Store[counter, int], buf int) <-chan Event {
	ch, cancel := s.SubscribeEvents(buf)
	t.Cleanup(cancel)
	return ch
}

func isSnapshot(e Event) bool { return e.Kind == EventSnapshot }

// snapshot applies one action on s, so that there is something new to
// snapshot, and takes a snapshot, which emits EventSnapshot on Raft's
// apply goroutine.
func snapshot(ctx context.Context, t *testing.T, s *Store[counter, int]) {
	t.Helper()
	if _, err := s.Perform(ctx, "add", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
}

// Events report role changes (a leadership transfer: EventLeader on the
// new leader with a later term, EventFollower on the old one) and a
// snapshot taken on demand.
func TestEvents(t *testing.T) {
	g := newGroup(t, 3, nil)
	li := g.leader()
	ni := (li + 1) % 3
	old, next := g.stores[li], g.stores[ni]
	oldEvents, nextEvents := subscribe(t, old, 0), subscribe(t, next, 0)
	term := old.raft.CurrentTerm()
	if err := old.TransferLeadership(ctxT(t), g.nodes[ni].Self().ID); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	e := nextEvent(ctx, t, nextEvents, "EventLeader on the new leader", func(e Event) bool { return e.Kind == EventLeader })
	if e.Term <= term {
		t.Fatalf("new leader's EventLeader in term %d, want after %d", e.Term, term)
	}
	nextEvent(ctx, t, oldEvents, "EventFollower on the old leader", func(e Event) bool { return e.Kind == EventFollower })

	snapshot(ctx, t, next)
	if e := nextEvent(ctx, t, nextEvents, "EventSnapshot", isSnapshot); e.Index == 0 {
		t.Fatalf("EventSnapshot at index 0")
	}
	if got := EventSnapshot.String(); got != "snapshot" {
		t.Fatalf("EventSnapshot.String() = %q", got)
	}
}

// Each subscription receives every event, in order: two subscribers do
// not share (and split) one stream.
func TestSubscribersEachGetEveryEvent(t *testing.T) {
	g := newGroup(t, 1, nil)
	s := g.stores[0]
	a, b := subscribe(t, s, 0), subscribe(t, s, 0)
	ctx := ctxT(t)
	const n = 5
	for range n {
		snapshot(ctx, t, s)
	}
	var got [2][]uint64
	for i, ch := range []<-chan Event{a, b} {
		for range n {
			got[i] = append(got[i], nextEvent(ctx, t, ch, "EventSnapshot", isSnapshot).Index)
		}
	}
	if !slices.Equal(got[0], got[1]) || !slices.IsSorted(got[0]) || got[0][0] == 0 {
		t.Fatalf("snapshot indexes: first subscriber %v, second %v; want the same increasing ones", got[0], got[1])
	}
	if d := s.Stats().EventsDropped; d != 0 {
		t.Fatalf("EventsDropped = %d with room for every event", d)
	}
}

// cancel closes the channel once (again is a no-op), releases the
// subscription, and stops deliveries to it while the others go on.
func TestSubscribeCancel(t *testing.T) {
	g := newGroup(t, 1, nil)
	s := g.stores[0]
	gone, cancel := s.SubscribeEvents(0)
	kept, cancelKept := s.SubscribeEvents(0)
	defer cancelKept()
	if n := s.bus.Subscribers(); n != 2 {
		t.Fatalf("%d subscriptions, want 2", n)
	}
	cancel()
	cancel()
	if n := s.bus.Subscribers(); n != 1 {
		t.Fatalf("%d subscriptions after cancel, want 1", n)
	}
	ctx := ctxT(t)
	snapshot(ctx, t, s)
	nextEvent(ctx, t, kept, "EventSnapshot on the kept subscription", isSnapshot)
	for e := range gone { // closed by cancel: ends at once
		t.Fatalf("cancelled subscription received %+v", e)
	}
}

// A subscriber that does not read never holds up Raft's apply goroutine:
// its full channel loses the events, Stats and the metrics count them,
// and the other subscribers still get every one.
func TestSlowSubscriberDoesNotBlockApply(t *testing.T) {
	c := clustertest.Start(t, clustertest.Config{Nodes: 1, Configure: func(_ int, cfg *cluster.Config) {
		cfg.MetricsAddr = "127.0.0.1:0"
	}})
	g := &group{t: t, nodes: c.Nodes()}
	g.stores = append(g.stores, g.startStore(g.nodes[0], counterConfig(t, nil, 1)))
	g.leader()
	s := g.stores[0]
	slow, fast := subscribe(t, s, 1), subscribe(t, s, 0)
	ctx := ctxT(t)
	const n = 5
	for i := range n {
		snapshot(ctx, t, s) // its Perform fails at ctx's end if apply is stuck
		nextEvent(ctx, t, fast, "EventSnapshot on the reading subscriber", isSnapshot)
		if len(slow) != 1 {
			t.Fatalf("after snapshot %d the slow subscriber holds %d events, want 1", i+1, len(slow))
		}
	}
	// The slow channel kept the first event; every later one was lost
	// there (and only there).
	d := s.Stats().EventsDropped
	if d < n-1 {
		t.Fatalf("EventsDropped = %d, want at least %d", d, n-1)
	}
	if e := <-slow; e.Kind != EventSnapshot {
		t.Fatalf("the slow subscriber kept %+v, want the first EventSnapshot", e)
	}
	m := clustertest.Scrape(t, g.nodes[0])
	if got := m.MustValue(t, "notp_conflux_events_dropped_total", map[string]string{"group": "counter"}); got < float64(d) {
		t.Fatalf("notp_conflux_events_dropped_total = %v, want at least Stats.EventsDropped %d", got, d)
	}
}

// Events is one store-owned subscription: every call returns the same
// channel, which receives the events published after the first call,
// beside the subscriptions of SubscribeEvents.
func TestEventsIsOneSharedSubscription(t *testing.T) {
	g := newGroup(t, 1, nil)
	s := g.stores[0]
	ch := s.Events()
	if s.Events() != ch {
		t.Fatal("Events returned a second channel")
	}
	own := subscribe(t, s, 0)
	if n := s.bus.Subscribers(); n != 2 {
		t.Fatalf("%d subscriptions after Events twice and SubscribeEvents once, want 2", n)
	}
	ctx := ctxT(t)
	snapshot(ctx, t, s)
	a := nextEvent(ctx, t, ch, "EventSnapshot on Events' channel", isSnapshot)
	b := nextEvent(ctx, t, own, "EventSnapshot on a subscription", isSnapshot)
	if a != b || a.Index == 0 {
		t.Fatalf("EventSnapshot: %+v on Events' channel, %+v on the subscription", a, b)
	}
}
