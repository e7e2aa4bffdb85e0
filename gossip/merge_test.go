package gossip

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip/internal/codec"
	"github.com/notp-go/notp/vclock"
)

func nd(id string) notp.Node { return notp.Node{ID: id, Host: "127.0.0.1", Port: 7000} }

func ent(id string, version uint64, writer string, removed bool, weight int) codec.Entry {
	return codec.Entry{Node: nd(id), Weight: weight, Version: version, Writer: writer, Removed: removed, Time: int64(version)}
}

// The per-entry merge, case by case. It replaces notp's whole-ring
// last-writer-wins on creation time, under which one of two concurrent
// changes was lost.
func TestMergeEntriesTable(t *testing.T) {
	cases := []struct {
		name        string
		local       []codec.Entry
		remote      []codec.Entry
		want        []codec.Entry
		wantChanged []string
	}{
		{"higher version wins", []codec.Entry{ent("a", 1, "x", false, 3)}, []codec.Entry{ent("a", 2, "y", false, 5)},
			[]codec.Entry{ent("a", 2, "y", false, 5)}, []string{"a"}},
		{"stale version ignored", []codec.Entry{ent("a", 3, "x", false, 3)}, []codec.Entry{ent("a", 2, "z", false, 5)},
			[]codec.Entry{ent("a", 3, "x", false, 3)}, nil},
		{"equal version: higher writer wins", []codec.Entry{ent("a", 2, "x", false, 3)}, []codec.Entry{ent("a", 2, "y", false, 5)},
			[]codec.Entry{ent("a", 2, "y", false, 5)}, []string{"a"}},
		{"equal version: lower writer loses", []codec.Entry{ent("a", 2, "y", false, 3)}, []codec.Entry{ent("a", 2, "x", false, 5)},
			[]codec.Entry{ent("a", 2, "y", false, 3)}, nil},
		{"newer tombstone removes", []codec.Entry{ent("a", 1, "x", false, 3)}, []codec.Entry{ent("a", 2, "x", true, 3)},
			[]codec.Entry{ent("a", 2, "x", true, 3)}, []string{"a"}},
		{"older live entry loses to tombstone (zombie)", []codec.Entry{ent("a", 4, "x", true, 3)}, []codec.Entry{ent("a", 3, "a", false, 3)},
			[]codec.Entry{ent("a", 4, "x", true, 3)}, nil},
		{"re-insert after removal", []codec.Entry{ent("a", 4, "x", true, 3)}, []codec.Entry{ent("a", 5, "y", false, 3)},
			[]codec.Entry{ent("a", 5, "y", false, 3)}, []string{"a"}},
		{"same version and writer: removal wins the tie", []codec.Entry{ent("a", 2, "x", false, 3)}, []codec.Entry{ent("a", 2, "x", true, 3)},
			[]codec.Entry{ent("a", 2, "x", true, 3)}, []string{"a"}},
		{"concurrent inserts of different nodes both survive", []codec.Entry{ent("d", 1, "n0", false, 3)}, []codec.Entry{ent("e", 1, "n2", false, 3)},
			[]codec.Entry{ent("d", 1, "n0", false, 3), ent("e", 1, "n2", false, 3)}, []string{"e"}},
		{"identical state changes nothing", []codec.Entry{ent("a", 1, "x", false, 3)}, []codec.Entry{ent("a", 1, "x", false, 3)},
			[]codec.Entry{ent("a", 1, "x", false, 3)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newState(time.Now)
			for _, e := range c.local {
				s.entries[e.Node.ID] = e
			}
			changed := s.mergeEntries(c.remote)
			if got := s.sortedEntries(); !slices.Equal(got, c.want) {
				t.Errorf("entries = %v, want %v", got, c.want)
			}
			if !slices.Equal(changed, c.wantChanged) {
				t.Errorf("changed = %v, want %v", changed, c.wantChanged)
			}
		})
	}
}

// The ring diff: additions only, removals only, both; weight and address
// changes are reported as updates, so subscribers learn of them.
func TestDiffLive(t *testing.T) {
	old := map[string]codec.Entry{"a": ent("a", 1, "x", false, 3), "b": ent("b", 1, "x", false, 3), "c": ent("c", 1, "x", false, 3)}
	cur := map[string]codec.Entry{"a": ent("a", 1, "x", false, 3), "b": ent("b", 2, "x", true, 3),
		"c": ent("c", 2, "x", false, 4), "d": ent("d", 1, "x", false, 3)}
	d := diffLive(old, cur, nil)
	if !slices.Equal(d.added, []notp.Node{nd("d")}) || !slices.Equal(d.removed, []notp.Node{nd("b")}) ||
		!slices.Equal(d.updated, []notp.Node{nd("c")}) {
		t.Fatalf("diff = %+v", d)
	}
	if d := diffLive(old, old, nil); !d.empty() {
		t.Fatalf("diff of equal states = %+v", d)
	}
}

// MaxMsgRound is 0, 1, 1 for 0, 1, 2 nodes (then ceil(log2 n)).
func TestMaxRounds(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 8: 3, 9: 4, 200: 8} {
		if got := maxRounds(n); got != want {
			t.Errorf("maxRounds(%d) = %d, want %d", n, got, want)
		}
	}
}

// replica is a naive model of one node for the property test.
type replica struct {
	id string
	s  *state
}

func mergeInto(dst, src *state) {
	dst.mergeEntries(src.sortedEntries())
	dst.clock.Merge(src.clock)
}

// TestMergeConverges is the property test of the per-entry merge: replicas
// making random local changes and exchanging states in random order all
// end with the same state once every replica has merged every other one,
// whatever the merge order.
func TestMergeConverges(t *testing.T) {
	for seed := range uint64(150) {
		rng := rand.New(rand.NewPCG(seed, 42))
		reps := make([]*replica, 2+rng.IntN(4))
		for i := range reps {
			reps[i] = &replica{id: fmt.Sprintf("r%d", i), s: newState(time.Now)}
		}
		nodes := []string{"a", "b", "c", "d", "e"}
		for range 30 {
			r := reps[rng.IntN(len(reps))]
			switch rng.IntN(4) {
			case 0, 1:
				n := nodes[rng.IntN(len(nodes))]
				r.s.write(r.id, nd(n), 1+rng.IntN(8), rng.IntN(3) == 0, time.Now())
				r.s.clock.Increment(r.id)
			case 2:
				mergeInto(r.s, reps[rng.IntN(len(reps))].s)
			case 3:
				if n := nodes[rng.IntN(len(nodes))]; r.s.live(n) {
					r.s.write(r.id, nd(n), 1, true, time.Now())
					r.s.clock.Increment(r.id)
				}
			}
		}
		// Merge all final states into fresh copies, in two random orders.
		var results []*state
		for range 3 {
			order := rng.Perm(len(reps))
			acc := newState(time.Now)
			for _, i := range order {
				mergeInto(acc, reps[i].s.clone())
			}
			// Idempotence: merging again changes nothing.
			for _, i := range order {
				if ch := acc.mergeEntries(reps[i].s.sortedEntries()); len(ch) != 0 {
					t.Fatalf("seed %d: re-merge changed %v", seed, ch)
				}
			}
			results = append(results, acc)
		}
		for _, r := range results[1:] {
			if !slices.Equal(r.sortedEntries(), results[0].sortedEntries()) {
				t.Fatalf("seed %d: different merge orders disagree:\n%v\n%v", seed, r.sortedEntries(), results[0].sortedEntries())
			}
			if r.clock.Compare(results[0].clock) != vclock.Equal {
				t.Fatalf("seed %d: clocks differ", seed)
			}
			if !r.buildRing(3, 2).Equal(results[0].buildRing(3, 2)) {
				t.Fatalf("seed %d: rings differ", seed)
			}
		}
		// Pairwise exchange (gossip) reaches the same state.
		for range 2 {
			for _, a := range reps {
				for _, b := range reps {
					mergeInto(a.s, b.s)
				}
			}
		}
		for _, r := range reps {
			if !slices.Equal(r.s.sortedEntries(), results[0].sortedEntries()) {
				t.Fatalf("seed %d: gossiped replica %s disagrees", seed, r.id)
			}
		}
	}
}

func BenchmarkMerge200(b *testing.B) {
	local, remote := newState(time.Now), newState(time.Now)
	for i := range 200 {
		n := nd(fmt.Sprintf("node-%03d", i))
		local.write("w", n, 3, false, time.Now())
		remote.write("w", n, 3, false, time.Now())
		local.clock.Increment(n.ID)
		remote.clock.Increment(n.ID)
	}
	remote.write("x", nd("node-100"), 4, false, time.Now())
	msg := codec.EncodeMessage(&codec.Message{Type: codec.MsgUpdate, Ring: "r", Clock: remote.clock, Entries: remote.sortedEntries()})
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := codec.DecodeMessage(msg)
		if err != nil {
			b.Fatal(err)
		}
		s := local.clone()
		s.mergeEntries(m.Entries)
		s.clock.Merge(m.Clock)
	}
}

// BenchmarkStateMsgCached200 is the cost of each message sent while the
// state is unchanged (forwards, answers): the entries are encoded once.
func BenchmarkStateMsgCached200(b *testing.B) {
	r := &Ring{st: newState(time.Now), ringID: "r"}
	for i := range 200 {
		r.st.write("w", nd(fmt.Sprintf("node-%03d", i)), 3, false, time.Now())
		r.st.clock.Increment(fmt.Sprintf("node-%03d", i))
	}
	r.touchLocked()
	b.ReportAllocs()
	for b.Loop() {
		_ = r.stateMsgLocked(codec.MsgUpdate, 3)
	}
}

// BenchmarkFingers200 is the cost of recomputing the gossip neighbours of
// a 200-node ring after a change.
func BenchmarkFingers200(b *testing.B) {
	r := &Ring{st: newState(time.Now), self: "node-100"}
	for i := range 200 {
		r.st.write("w", nd(fmt.Sprintf("node-%03d", i)), 3, false, time.Now())
	}
	b.ReportAllocs()
	for b.Loop() {
		r.gen++
		if len(r.fingersLocked()) == 0 {
			b.Fatal("no fingers")
		}
	}
}

func BenchmarkEncodeState200(b *testing.B) {
	s := newState(time.Now)
	for i := range 200 {
		s.write("w", nd(fmt.Sprintf("node-%03d", i)), 3, false, time.Now())
		s.clock.Increment(fmt.Sprintf("node-%03d", i))
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = codec.EncodeMessage(&codec.Message{Type: codec.MsgUpdate, Ring: "r", Clock: s.clock, Entries: s.sortedEntries()})
	}
}
