package gossip

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/chash"
	"github.com/notp-go/notp/gossip/internal/codec"
	"github.com/notp-go/notp/vclock"
)

// Limits applied to local operations and to every decoded state (the
// decoders in gossip/internal/codec check them).
const (
	// MaxWeight is the largest weight (tokens) a node may have.
	MaxWeight = codec.MaxWeight
	// MaxNodes is the largest number of entries (live and removed) a
	// state may hold.
	MaxNodes = codec.MaxNodes
	// MaxRingIDLen is the longest ring id, in bytes.
	MaxRingIDLen = codec.MaxRingIDLen
	// DefaultMaxTokens is the default Config.MaxTokens: the most tokens
	// (the sum of the weights of the live entries) a ring may hold. It is
	// MaxNodes nodes of the default weight (chash.DefaultRFactor, 128):
	// 1,280,000 tokens, some 130 MB of ring, so a ring of default-weight
	// nodes fills up at MaxNodes, not at its tokens.
	DefaultMaxTokens = MaxNodes * chash.DefaultRFactor
	// MaxVersion is the largest entry version and clock count a decoded
	// state may carry: 2^53, the largest integer a JSON (JavaScript) peer
	// or tool represents exactly.
	MaxVersion = codec.MaxVersion
	// MaxIDLen is the longest node ID (and writer ID) an entry may carry,
	// in bytes, and MaxHostLen the longest host (a DNS name's limit):
	// a state of MaxNodes entries then encodes to under 8 MB, within a
	// kernel message, a flush file and memberlist's push/pull.
	MaxIDLen   = codec.MaxIDLen
	MaxHostLen = codec.MaxHostLen
)

// compareEntries is the total order of writes to one node's entry: the
// greater one wins a merge. Version first, then writer ID; the remaining
// fields only break ties between different writes with the same version
// and writer (possible after a writer lost its state), so every replica
// picks the same winner.
func compareEntries(a, b codec.Entry) int {
	if c := cmp.Compare(a.Version, b.Version); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Writer, b.Writer); c != 0 {
		return c
	}
	if a.Removed != b.Removed {
		if a.Removed {
			return 1
		}
		return -1
	}
	if c := cmp.Compare(a.Weight, b.Weight); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Node.Host, b.Node.Host); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Node.Port, b.Node.Port); c != 0 {
		return c
	}
	return cmp.Compare(a.Time, b.Time)
}

// state is the replicated ring state: an entry per node ever seen (until
// tombstones are collected) and the vector clock of the changes it holds.
type state struct {
	entries map[string]codec.Entry
	clock   *vclock.Clock
}

func newState(now func() time.Time) *state {
	return &state{entries: make(map[string]codec.Entry), clock: vclock.NewWithClock(now)}
}

func (s *state) clone() *state {
	return &state{entries: maps.Clone(s.entries), clock: s.clock.Clone()}
}

// sortedEntries returns the entries ordered by node ID (deterministic encoding).
func (s *state) sortedEntries() []codec.Entry {
	out := make([]codec.Entry, 0, len(s.entries))
	for _, id := range slices.Sorted(maps.Keys(s.entries)) {
		out = append(out, s.entries[id])
	}
	return out
}

// live reports whether id has a live entry.
func (s *state) live(id string) bool {
	e, ok := s.entries[id]
	return ok && !e.Removed
}

// liveNodes returns the live nodes sorted by ID.
func (s *state) liveNodes() []notp.Node {
	var out []notp.Node
	for _, e := range s.sortedEntries() {
		if !e.Removed {
			out = append(out, e.Node)
		}
	}
	return out
}

// write records a local change to node's entry, written by writer: the new
// entry's version is one above the current one, so it wins every merge
// against writes this replica has seen.
func (s *state) write(writer string, node notp.Node, weight int, removed bool, now time.Time) {
	old := s.entries[node.ID]
	s.entries[node.ID] = codec.Entry{
		Node: node, Weight: weight, Version: old.Version + 1,
		Writer: writer, Removed: removed, Time: now.UnixMicro(),
	}
}

// mergeEntries folds remote entries into s, keeping for each node the
// greater write (compareEntries). It returns the IDs whose entry changed.
// The clock is not touched.
func (s *state) mergeEntries(remote []codec.Entry) (changed []string) {
	for _, re := range remote {
		le, ok := s.entries[re.Node.ID]
		if !ok || compareEntries(re, le) > 0 {
			s.entries[re.Node.ID] = re
			changed = append(changed, re.Node.ID)
		}
	}
	return changed
}

// liveTokens is the sum of the weights of the live entries.
func (s *state) liveTokens() int {
	n := 0
	for _, e := range s.entries {
		if !e.Removed {
			n += e.Weight
		}
	}
	return n
}

// enforce applies the state's caps after a change from olds (the entries
// before it): at most MaxNodes entries and maxTokens live tokens. Over
// MaxNodes the oldest tombstones are evicted first (a replica that still
// holds one may bring the node back, as after TombstoneTTL); while still
// over either cap, the live entries the change added or made heavier are
// put back as they were in olds, largest ID first (every replica refuses
// the same ones), and returned as refused.
func (s *state) enforce(olds map[string]codec.Entry, maxTokens int) (refused []notp.Node, evicted int) {
	if len(s.entries) > MaxNodes {
		var tombs []codec.Entry
		for _, e := range s.entries {
			if e.Removed {
				tombs = append(tombs, e)
			}
		}
		slices.SortFunc(tombs, func(a, b codec.Entry) int {
			return cmp.Or(cmp.Compare(a.Time, b.Time), cmp.Compare(a.Node.ID, b.Node.ID))
		})
		for _, e := range tombs {
			if len(s.entries) <= MaxNodes {
				break
			}
			delete(s.entries, e.Node.ID)
			evicted++
		}
	}
	tokens := s.liveTokens()
	if len(s.entries) <= MaxNodes && tokens <= maxTokens {
		return nil, evicted
	}
	var grown []string
	for id, e := range s.entries {
		if o, ok := olds[id]; !e.Removed && (!ok || o.Removed || e.Weight > o.Weight) {
			grown = append(grown, id)
		}
	}
	slices.Sort(grown)
	for _, id := range slices.Backward(grown) {
		if len(s.entries) <= MaxNodes && tokens <= maxTokens {
			break
		}
		e := s.entries[id]
		tokens -= e.Weight
		if o, ok := olds[id]; ok {
			s.entries[id] = o
			if !o.Removed {
				tokens += o.Weight
			}
		} else {
			delete(s.entries, id)
		}
		refused = append(refused, e.Node)
	}
	return refused, evicted
}

// gc drops tombstones written before cutoff; it returns how many.
func (s *state) gc(cutoff time.Time) int {
	n := 0
	c := cutoff.UnixMicro()
	for id, e := range s.entries {
		if e.Removed && e.Time < c {
			delete(s.entries, id)
			n++
		}
	}
	return n
}

// buildRing derives the hash ring from the live entries.
// All tokens are sorted and published at once (chash.Build), so the cost is
// O(tokens·log tokens), not the O(nodes·tokens) of one Insert per node.
func (s *state) buildRing(rfactor, pfactor int) *chash.Ring {
	var live []chash.Weighted
	for _, e := range s.sortedEntries() {
		if !e.Removed {
			live = append(live, chash.Weighted{Node: e.Node, Weight: e.Weight})
		}
	}
	return chash.Build(rfactor, pfactor, live)
}

// ringDiff compares the live members of two states.
type ringDiff struct {
	added, removed, updated []notp.Node
}

func (d ringDiff) empty() bool {
	return len(d.added) == 0 && len(d.removed) == 0 && len(d.updated) == 0
}

// diffLive compares the live entries of old (a map snapshot) and s for the
// given candidate IDs (nil = all IDs of both).
func diffLive(old map[string]codec.Entry, cur map[string]codec.Entry, ids []string) ringDiff {
	if ids == nil {
		set := make(map[string]struct{}, len(old)+len(cur))
		for id := range old {
			set[id] = struct{}{}
		}
		for id := range cur {
			set[id] = struct{}{}
		}
		ids = slices.Collect(maps.Keys(set))
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var d ringDiff
	for _, id := range ids {
		o, ook := old[id]
		c, cok := cur[id]
		oLive, cLive := ook && !o.Removed, cok && !c.Removed
		switch {
		case !oLive && cLive:
			d.added = append(d.added, c.Node)
		case oLive && !cLive:
			d.removed = append(d.removed, o.Node)
		case oLive && cLive && (o.Node != c.Node || o.Weight != c.Weight):
			d.updated = append(d.updated, c.Node)
		}
	}
	return d
}

// maxRounds is notp's maxMsgRound: 0 for an empty ring, 1 for one node,
// else ceil(log2(n)).
func maxRounds(n int) int {
	switch {
	case n <= 0:
		return 0
	case n == 1:
		return 1
	}
	r := 0
	for v := 1; v < n; v <<= 1 {
		r++
	}
	return r
}
