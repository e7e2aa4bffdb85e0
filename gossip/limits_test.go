package gossip

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip/internal/codec"
	"github.com/notp-go/notp/vclock"
)

// liveEntries returns count live entries "<prefix>NNNNN" written by writer.
func liveEntries(prefix string, count int, writer string) []codec.Entry {
	es := make([]codec.Entry, count)
	for i := range es {
		es[i] = codec.Entry{Node: peer(fmt.Sprintf("%s%05d", prefix, i), 7000), Weight: 1, Version: 1, Writer: writer, Time: 1}
	}
	return es
}

func clockOf(counts map[string]uint64) *vclock.Clock {
	c := vclock.New()
	for id, n := range counts {
		c.Update(id, n)
	}
	return c
}

// Two valid messages of 6,000 live entries each would have made a state of
// 12,000 entries: more than the node may send or load. The merge keeps
// MaxNodes, refuses the rest (largest IDs first) with EventRefused, and the
// state still round-trips through the flush file.
func TestMergeKeepsMaxNodes(t *testing.T) {
	u := newLazyUnit(t, "a")
	u.r.cfg.FlushPath = filepath.Join(t.TempDir(), "state")
	u.deliver(peer("b", 7001), &codec.Message{Type: codec.MsgUpdate, Ring: "ring",
		Clock: clockOf(map[string]uint64{"b": 1}), Entries: liveEntries("b", 6000, "b")})
	u.deliver(peer("c", 7002), &codec.Message{Type: codec.MsgUpdate, Ring: "ring",
		Clock: clockOf(map[string]uint64{"c": 1}), Entries: liveEntries("c", 6000, "c")})
	u.r.mu.Lock()
	held := len(u.r.st.entries)
	u.r.mu.Unlock()
	if held != MaxNodes {
		t.Fatalf("state holds %d entries, want %d", held, MaxNodes)
	}
	if got, want := u.r.Stats().EntriesRefused, uint64(6000+6000+1-MaxNodes); got != want {
		t.Fatalf("EntriesRefused = %d, want %d", got, want)
	}
	if !u.r.View().Has("c00000") || u.r.View().Has("c05999") || u.r.View().Size() != MaxNodes-1+u.r.RFactor() {
		t.Fatalf("ring: has c00000 %v, c05999 %v, %d tokens", u.r.View().Has("c00000"), u.r.View().Has("c05999"), u.r.View().Size())
	}
	if !u.sawRefused(t, "c05999") {
		t.Fatal("no EventRefused for c05999")
	}
	// Full of live entries: a local insert fails and changes nothing.
	if err := u.r.Insert(ctx(t), peer("z", 7003), 1, false); !errors.Is(err, ErrRingFull) {
		t.Fatalf("Insert into a full ring = %v, want ErrRingFull", err)
	}
	// The node's own updates still apply.
	if err := u.r.Update(ctx(t), u.self(), 5, false); err != nil {
		t.Fatalf("Update of this node in a full ring: %v", err)
	}
	checkFlushRoundTrip(t, u)
}

func (u *unit) sawRefused(t *testing.T, id string) bool {
	t.Helper()
	for {
		select {
		case ev := <-u.evs:
			if ev.Kind == EventRefused {
				for _, n := range ev.Nodes {
					if n.ID == id {
						return true
					}
				}
			}
		default:
			return false
		}
	}
}

// newLazyUnit is newUnit with LazyConnect, so that entries for thousands
// of unreachable nodes open no kernel links, and whose sends are dropped
// (a broadcast to thousands of members would be decoded thousands of
// times).
func newLazyUnit(t *testing.T, id string) *unit {
	u := newUnit(t, id)
	u.r.mu.Lock()
	u.r.cfg.LazyConnect = true
	u.r.testSend = func(notp.Node, []byte) {}
	u.r.mu.Unlock()
	return u
}

// checkFlushRoundTrip flushes u's state and loads it into a new Ring.
func checkFlushRoundTrip(t *testing.T, u *unit) {
	t.Helper()
	u.r.mu.Lock()
	u.r.dirty = true
	want := u.r.st.sortedEntries()
	u.r.mu.Unlock()
	if err := u.r.flush(); err != nil {
		t.Fatal(err)
	}
	r2, err := New(u.k, Config{FlushPath: u.r.cfg.FlushPath})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := r2.Load(); !ok || err != nil {
		t.Fatalf("Load of a state of %d entries = %v, %v", len(want), ok, err)
	}
	if got := r2.st.sortedEntries(); len(got) != len(want) || got[len(got)-1] != want[len(want)-1] {
		t.Fatalf("loaded %d entries, want %d", len(got), len(want))
	}
}

// Over MaxNodes, the oldest tombstones are evicted before any live entry
// is refused.
func TestMergeEvictsOldestTombstones(t *testing.T) {
	u := newLazyUnit(t, "a")
	tombs := liveEntries("t", 6000, "b")
	for i := range tombs {
		tombs[i].Removed, tombs[i].Version, tombs[i].Time = true, 2, int64(i+1)
	}
	u.deliver(peer("b", 7001), &codec.Message{Type: codec.MsgUpdate, Ring: "ring",
		Clock: clockOf(map[string]uint64{"b": 1}), Entries: tombs})
	u.deliver(peer("c", 7002), &codec.Message{Type: codec.MsgUpdate, Ring: "ring",
		Clock: clockOf(map[string]uint64{"c": 1}), Entries: liveEntries("c", 6000, "c")})
	u.r.mu.Lock()
	held := len(u.r.st.entries)
	_, oldest := u.r.st.entries["t00000"]
	_, newest := u.r.st.entries["t05999"]
	u.r.mu.Unlock()
	st := u.r.Stats()
	if held != MaxNodes || st.EntriesRefused != 0 || st.TombstonesEvicted != 6000+6000+1-MaxNodes {
		t.Fatalf("held %d, refused %d, evicted %d", held, st.EntriesRefused, st.TombstonesEvicted)
	}
	if oldest || !newest {
		t.Fatalf("oldest tombstone kept %v, newest kept %v", oldest, newest)
	}
	if got := len(u.r.View().Nodes()); got != 6001 {
		t.Fatalf("ring has %d nodes, want 6001", got)
	}
}

// The total of the live weights is capped: a local change beyond
// MaxTokens fails, received entries beyond it are refused.
func TestMaxTokens(t *testing.T) {
	u := newLazyUnit(t, "a")
	self := u.r.cfg.RFactor // this node's own tokens
	u.r.cfg.MaxTokens = self + 97
	nodes := make([]notp.Node, 30)
	for i := range nodes {
		nodes[i] = peer(fmt.Sprintf("m%02d", i), 7000)
	}
	if err := u.r.MInsert(ctx(t), nodes, 4, false); !errors.Is(err, ErrRingFull) {
		t.Fatalf("MInsert of 120 tokens = %v, want ErrRingFull", err)
	}
	if got := len(u.r.View().Nodes()); got != 1 {
		t.Fatalf("a refused MInsert left %d nodes", got)
	}
	if err := u.r.MInsert(ctx(t), nodes[:24], 4, false); err != nil {
		t.Fatalf("MInsert of 96 tokens: %v", err)
	}
	heavy := liveEntries("h", 2, "b")
	heavy[0].Weight, heavy[1].Weight = 1, 4000
	u.deliver(peer("b", 7001), &codec.Message{Type: codec.MsgUpdate, Ring: "ring",
		Clock: clockOf(map[string]uint64{"b": 1}), Entries: heavy})
	if u.r.View().Has("h00001") || !u.r.View().Has("h00000") || u.r.View().Size() != self+97 {
		t.Fatalf("ring of %d tokens, has h00001 %v", u.r.View().Size(), u.r.View().Has("h00001"))
	}
	if !u.sawRefused(t, "h00001") {
		t.Fatal("no EventRefused for h00001")
	}
}

// A peer cannot advance this node's own clock count once this node has
// made a change; before that (a fresh or reloaded node) it learns it.
func TestRemoteSelfCountRejected(t *testing.T) {
	u := newLazyUnit(t, "a")
	// Fresh: a peer that knew this node before a state loss tells it its
	// count, which it adopts.
	u.deliver(peer("b", 7001), &codec.Message{Type: codec.MsgUpdate, Ring: "ring",
		Clock: clockOf(map[string]uint64{"a": 7, "b": 1}), Entries: []codec.Entry{ent("b", 1, "b", false, 3)}})
	if got := u.r.Clock().Count("a"); got != 7 {
		t.Fatalf("fresh node's own count = %d, want 7 (learnt)", got)
	}
	if err := u.r.Insert(ctx(t), peer("c", 7002), 1, false); err != nil {
		t.Fatal(err)
	}
	own := u.r.Clock().Count("a") // 8
	rejected := u.r.Stats().MessagesRejected
	for _, m := range []*codec.Message{
		{Type: codec.MsgUpdate, Ring: "ring", Clock: clockOf(map[string]uint64{"a": own + 1000, "b": 2}),
			Entries: []codec.Entry{ent("d", 1, "b", false, 3)}},
		{Type: codec.MsgDigest, Ring: "ring", Clock: clockOf(map[string]uint64{"a": own + 1})},
	} {
		u.deliver(peer("b", 7001), m)
	}
	if got := u.r.Clock().Count("a"); got != own {
		t.Fatalf("own count = %d after forged messages, want %d", got, own)
	}
	if u.r.View().Has("d") {
		t.Fatal("the forged message was merged")
	}
	if got := u.r.Stats().MessagesRejected - rejected; got != 2 {
		t.Fatalf("%d messages rejected, want 2", got)
	}
	// memberlist's push/pull path rejects it as well.
	u.r.mlDel = &mlDelegate{r: u.r, ringID: "ring"}
	u.r.mlDel.MergeRemoteState(codec.EncodeMessage(&codec.Message{Type: codec.MsgUpdate, Ring: "ring",
		Clock: clockOf(map[string]uint64{"a": own + 1, "b": 2}), Entries: []codec.Entry{ent("d", 1, "b", false, 3)}}), false)
	if u.r.View().Has("d") || u.r.Clock().Count("a") != own {
		t.Fatal("push/pull advanced this node's count")
	}
}
