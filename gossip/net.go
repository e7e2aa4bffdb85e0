package gossip

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/chash"
	"github.com/notp-go/notp/gossip/internal/codec"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/vclock"
)

// Codes of the kernel.RemoteError a ring answers a call with (Meet's join
// and Leave's announcement are calls); callers match them with
// errors.Is(err, &kernel.RemoteError{Code: CodeBusy}). Values are
// append-only: peers of other versions read them.
const (
	// CodeBusy: the ring's inbox was full and the message was dropped;
	// the caller may retry.
	CodeBusy = "BUSY"
	// CodeInvalidMessage: the message did not decode or validate, or named
	// another ring.
	CodeInvalidMessage = "INVALID_RING_MESSAGE"
)

// handle is the kernel handler of "gossip/<ring id>". It runs on the
// sender's connection reader and only queues the message.
func (r *Ring) handle(m kernel.Message) {
	select {
	case r.inbox <- m:
	default:
		r.stats.inboxDrops.add()
		if m.From.IsCall() {
			_ = r.k.ReplyError(m.From, kernel.Errorf(CodeBusy, "gossip: ring busy"))
		}
	}
}

// outgoing is a message to send once r.mu is released.
type outgoing struct {
	to  []notp.Node
	msg []byte
}

// afterMerge is what a merge asks the caller to do outside the lock.
type afterMerge struct {
	diff        ringDiff
	changed     bool // the entries changed
	selfRemoved bool
	ringID      string
	epoch       uint64
	sends       []outgoing
}

// process handles one received message on the loop goroutine. It returns
// the round with which the local state should be forwarded (0: none): the
// loop coalesces the forwards of a burst of messages into one.
func (r *Ring) process(km kernel.Message) (forward int) {
	m, err := codec.DecodeMessage(km.Data)
	if err != nil {
		r.reject(km, err)
		return 0
	}
	act, forward, err := r.apply(km.From.Node, m)
	if err != nil {
		r.reject(km, err)
		return 0
	}
	if (m.Type == codec.MsgLeave || m.Type == codec.MsgJoin) && km.From.IsCall() {
		_ = r.k.Reply(km.From, []byte("ok"))
	}
	r.finish(&act)
	return forward
}

// apply applies a decoded message from the node from to the state under
// r.mu, released by a defer so that a panic recovered by the loop leaves
// it unlocked. It returns the side effects, the round to forward with, or
// why the message was rejected.
func (r *Ring) apply(from notp.Node, m *codec.Message) (act afterMerge, forward int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m.Ring != r.ringID || r.ringID == "" {
		return act, 0, errors.New("gossip: message for another ring")
	}
	if m.Clock != nil {
		if err := r.checkSelfCountLocked(m.Clock); err != nil {
			return act, 0, err
		}
	}
	r.stats.recv.add()
	act.ringID = r.ringID
	switch m.Type {
	case codec.MsgSum:
		if m.Sum != r.sumLocked() {
			act.sends = []outgoing{{to: []notp.Node{from},
				msg: codec.EncodeMessage(&codec.Message{Type: codec.MsgDigest, Ring: r.ringID, Clock: r.st.clock})}}
		}
	case codec.MsgDigest:
		act.sends = r.answerDigestLocked(from, m.Clock)
	case codec.MsgPull:
		act.sends = []outgoing{{to: []notp.Node{from}, msg: r.stateMsgLocked(codec.MsgUpdate, 0)}}
	default:
		var join *joinInfo
		if m.Type == codec.MsgJoin {
			join = &joinInfo{from: from.ID, floor: m.Floor}
		}
		r.mergeLocked(m.Entries, m.Clock, join, &act)
		round := m.Round
		if m.Type == codec.MsgJoin {
			// The meeting node gets the union back at once, and every
			// other member hears of the change in one hop.
			round = 0
			act.sends = append(act.sends, outgoing{to: []notp.Node{from}, msg: r.stateMsgLocked(codec.MsgUpdate, 0)})
			if act.changed {
				act.sends = append(act.sends, r.broadcastLocked(from.ID)...)
			}
		} else if m.Type == codec.MsgUpdate {
			if e, ok := r.st.entries[from.ID]; ok && e.Removed && from.ID != r.self {
				// A zombie: tell it that it was removed.
				act.sends = append(act.sends, outgoing{to: []notp.Node{from}, msg: r.stateMsgLocked(codec.MsgUpdate, 0)})
			}
		}
		// Forward while round > 0, news or not, as notp does: stopping at
		// the first duplicate (rumour mongering with feedback) reaches only
		// ~80% of the nodes with fanout 2, while ceil(log2 N) blind rounds
		// reach ~90% in log2 N hops; the digest poll repairs the rest.
		if !act.selfRemoved {
			forward = round
		}
	}
	return act, forward, nil
}

// mergeRemoteState merges a state received by memberlist's push/pull for
// ring ringID like an update with round 0. It runs on a memberlist
// goroutine under Ring.safely, so r.mu is released by defer.
func (r *Ring) mergeRemoteState(ringID string, buf []byte) {
	if len(buf) == 0 {
		return
	}
	m, err := codec.DecodeMessage(buf)
	if err != nil || m.Type != codec.MsgUpdate {
		r.stats.rejected.add()
		return
	}
	act, ok := func() (act afterMerge, ok bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if m.Ring != r.ringID || r.ringID != ringID {
			return act, false
		}
		r.stats.pushPulls.add()
		act.ringID = r.ringID
		r.mergeLocked(m.Entries, m.Clock, nil, &act)
		return act, true
	}()
	if !ok {
		r.stats.rejected.add()
		return
	}
	r.finish(&act)
}

// forward sends the local state with round-1 to Fanout random live
// members (notp's route), if round > 0.
func (r *Ring) forward(round int) {
	r.mu.Lock()
	act := afterMerge{ringID: r.ringID, sends: r.routeLocked(round)}
	r.mu.Unlock()
	r.finish(&act)
}

func (r *Ring) reject(km kernel.Message, err error) {
	r.stats.rejected.add()
	r.log.Debug("rejected ring message", "peer", km.From.Node.ID, "err", err)
	if km.From.IsCall() {
		_ = r.k.ReplyError(km.From, kernel.Errorf(CodeInvalidMessage, "%v", err))
	}
}

// joinInfo describes a received join: its sender and the sender's floor.
type joinInfo struct {
	from  string
	floor uint64
}

// mergeLocked folds a remote state into the local one and records what
// changed in act. A join (non-nil) unions the live sets: a node live on
// either side before the merge stays live (re-added by this node if a
// tombstone won), and the sender's entry is written above its floor.
func (r *Ring) mergeLocked(remote []codec.Entry, rclock *vclock.Clock, join *joinInfo, act *afterMerge) {
	if err := r.checkSelfCountLocked(rclock); err != nil {
		// Only memberlist's push/pull gets here: process checked first.
		r.stats.rejected.add()
		r.log.Debug("rejected ring state", "err", err)
		return
	}
	st := r.st
	clockNews := !st.clock.Descends(rclock)
	conflict := st.clock.Compare(rclock) == vclock.Concurrent
	remote = r.skipSelfTombstone(remote)
	olds := st.snapshotEntries()
	selfWasLive := st.live(r.self)
	changed := st.mergeEntries(remote)
	if join != nil {
		changed = append(changed, r.unionJoinLocked(remote, olds, join)...)
	}
	if refused := r.enforceLocked(olds); len(refused) > 0 {
		changed = slices.DeleteFunc(changed, func(id string) bool {
			return slices.ContainsFunc(refused, func(n notp.Node) bool { return n.ID == id })
		})
	}
	st.clock.Merge(rclock)
	if conflict {
		r.stats.conflicts.add()
		var nodes []notp.Node
		for _, id := range changed {
			nodes = append(nodes, st.entries[id].Node)
		}
		r.emit(EventConflict, r.ringID, nodes)
	}
	if len(changed) == 0 {
		if clockNews {
			r.touchLocked()
		}
		return
	}
	act.changed = true
	r.stats.merges.add()
	r.touchLocked()
	act.diff = diffLive(olds, st.entries, changed)
	if !act.diff.empty() {
		r.publishDiffLocked(act.diff)
		r.emitDiff(r.ringID, act.diff)
	}
	if selfWasLive && !st.live(r.self) {
		act.selfRemoved = true
		act.epoch = r.epoch
	}
}

// unionJoinLocked makes a merged join a union (see the package doc): every
// node live on either side before the merge is live after it, placeholders
// become real entries, and the joining node's entry is written above its
// floor. It returns the ids it wrote; when it wrote any, this node's clock
// entry advances.
func (r *Ring) unionJoinLocked(remote []codec.Entry, olds map[string]codec.Entry, join *joinInfo) []string {
	st := r.st
	var wrote []string
	for _, re := range remote {
		id := re.Node.ID
		le, lok := olds[id]
		best, ok := bestLive(re, true, le, lok)
		if ok && !st.live(id) {
			st.write(r.self, best.Node, best.Weight, false, r.now())
			wrote = append(wrote, id)
		}
	}
	// Placeholders (version 0) of nodes that were never added become
	// real entries, so that a later removal of them is not ignored.
	for id, e := range st.entries {
		if e.Version == 0 && !e.Removed {
			if id == r.self {
				// Above the removals of this node that
				// skipSelfTombstone dropped, or the sender
				// keeps them and removes it again.
				e.Version = r.selfFloor
				st.entries[id] = e
			}
			st.write(r.self, e.Node, e.Weight, false, r.now())
			wrote = append(wrote, id)
		}
	}
	if e, ok := st.entries[join.from]; ok && !e.Removed && e.Version <= join.floor {
		e.Version = join.floor
		st.entries[join.from] = e
		st.write(r.self, e.Node, e.Weight, false, r.now())
		wrote = append(wrote, join.from)
	}
	if len(wrote) > 0 {
		st.clock.Increment(r.self)
		r.selfSync = false
	}
	return wrote
}

// checkSelfCountLocked rejects a remote clock that counts more changes by
// this node than this node made: a peer must not advance our own counter
// (our next changes would look already seen, and a forged huge count
// would exhaust it). While selfSync the higher count is legitimate (this
// node lost its state or loaded a stale one) and the merge adopts it.
func (r *Ring) checkSelfCountLocked(c *vclock.Clock) error {
	if rc, lc := c.Count(r.self), r.st.clock.Count(r.self); rc > lc && !r.selfSync {
		return fmt.Errorf("gossip: clock counts %d changes by this node, which made %d", rc, lc)
	}
	return nil
}

// skipSelfTombstone drops stale news about this node from remote while
// this node's own entry is the version-0 placeholder of a ring of its own:
// a removal (a node that nobody has added since it started, left or was
// removed cannot be removed again) and a live entry no newer than its
// floor (written before its leave or removal). Without this, a node
// rejoining with Join+Meet could learn its old membership or removal from
// a lagging peer (or memberlist's join exchange) before the join message
// re-adds it, and fall out again.
func (r *Ring) skipSelfTombstone(remote []codec.Entry) []codec.Entry {
	own, ok := r.st.entries[r.self]
	if !ok || own.Version != 0 || own.Removed {
		return remote
	}
	i := slices.IndexFunc(remote, func(e codec.Entry) bool {
		return e.Node.ID == r.self && (e.Removed || e.Version <= r.selfFloor)
	})
	if i < 0 {
		return remote
	}
	r.selfFloor = max(r.selfFloor, remote[i].Version)
	return slices.Delete(slices.Clone(remote), i, i+1)
}

// bestLive returns the greater of the live entries among a (if aok) and
// b (if bok).
func bestLive(a codec.Entry, aok bool, b codec.Entry, bok bool) (codec.Entry, bool) {
	aLive, bLive := aok && !a.Removed, bok && !b.Removed
	switch {
	case aLive && bLive:
		if compareEntries(a, b) >= 0 {
			return a, true
		}
		return b, true
	case aLive:
		return a, true
	case bLive:
		return b, true
	}
	return codec.Entry{}, false
}

func (r *Ring) emitDiff(ringID string, d ringDiff) {
	r.emit(EventInserted, ringID, d.added)
	r.emit(EventRemoved, ringID, d.removed)
	r.emit(EventUpdated, ringID, d.updated)
}

// answerDigestLocked compares a digest's clock with the local one: the
// sender gets our state if we have changes it lacks, and a pull if it has
// changes we lack.
func (r *Ring) answerDigestLocked(from notp.Node, rclock *vclock.Clock) []outgoing {
	var out []outgoing
	to := []notp.Node{from}
	if !rclock.Descends(r.st.clock) {
		out = append(out, outgoing{to: to, msg: r.stateMsgLocked(codec.MsgUpdate, 0)})
	}
	if !r.st.clock.Descends(rclock) {
		out = append(out, outgoing{to: to, msg: codec.EncodeMessage(&codec.Message{Type: codec.MsgPull, Ring: r.ringID})})
	}
	return out
}

// sumLocked is codec.ClockSum of the local clock, cached until the state
// changes.
func (r *Ring) sumLocked() uint64 {
	if !r.sumOK || r.sumGen != r.gen {
		r.sum, r.sumGen, r.sumOK = codec.ClockSum(r.st.clock), r.gen, true
	}
	return r.sum
}

// stateMsgLocked encodes the local state as a message. The encoding of
// the clock and entries is cached until the state changes.
func (r *Ring) stateMsgLocked(t codec.MsgType, round int) []byte {
	return r.stateMsgFloorLocked(t, round, 0)
}

func (r *Ring) stateMsgFloorLocked(t codec.MsgType, round int, floor uint64) []byte {
	if r.encEntries == nil || r.encGen != r.gen {
		r.encClock = codec.MustEncode(r.st.clock)
		r.encEntries = codec.MustEncode(r.st.sortedEntries())
		r.encGen = r.gen
	}
	return codec.MustEncode(&codec.RawMessage{V: codec.Version, Type: t, Ring: r.ringID, Round: round,
		Clock: r.encClock, Entries: r.encEntries, Floor: floor})
}

// broadcastLocked sends the local state to every live member that
// memberlist does not report dead or left, with round 0 (no forwarding).
// Local changes and joins use it instead of notp's random route: they are
// rare, admin-driven and small, and a random push with fanout 2 and
// ceil(log2 N) rounds misses about 8% of the members, which then wait for
// the next digest (Interval later) — at 50 nodes that made the p99 of
// convergence 2 s instead of milliseconds. One hop to everyone converges
// in the time of N casts; the digest poll and memberlist's push/pull
// repair what a failed send misses.
func (r *Ring) broadcastLocked(except string) []outgoing {
	if r.ringID == "" {
		return nil
	}
	to := slices.DeleteFunc(r.healthyLocked(r.targetsLockedAll()), func(n notp.Node) bool { return n.ID == except })
	if len(to) == 0 {
		return nil
	}
	return []outgoing{{to: to, msg: r.stateMsgLocked(codec.MsgUpdate, 0)}}
}

// routeLocked is notp's route: with n > 0 the local state goes to Fanout
// random live members with round n-1.
func (r *Ring) routeLocked(n int) []outgoing {
	if n <= 0 || r.ringID == "" {
		return nil
	}
	to := r.targetsLocked(Fanout)
	if len(to) == 0 {
		return nil
	}
	return []outgoing{{to: to, msg: r.stateMsgLocked(codec.MsgUpdate, n-1)}}
}

// targetsLocked returns up to n random live ring members other than this
// node, skipping those memberlist reports dead or left.
//
// Targets are drawn from this node's gossip neighbours ([Ring.fingersLocked]),
// not from every member, so that each node exchanges ring messages with
// O(log N) peers and the kernel holds O(N log N) links in all instead of a
// full mesh of N² (200 nodes on one machine would need 80 000 sockets).
func (r *Ring) targetsLocked(n int) []notp.Node {
	cands := r.healthyLocked(r.fingersLocked())
	if len(cands) == 0 {
		// Every neighbour is down: fall back to any healthy member.
		cands = r.healthyLocked(r.targetsLockedAll())
	}
	if len(cands) == 0 {
		// memberlist reports every member dead: more likely this node
		// is the one cut off (or overloaded) than all the others. Keep
		// polling someone, or a node that missed a change while its
		// failure detector flapped would never catch up.
		cands = r.targetsLockedAll()
	}
	rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	return cands[:min(n, len(cands))]
}

// healthyLocked returns the nodes memberlist does not report dead or left.
func (r *Ring) healthyLocked(nodes []notp.Node) []notp.Node {
	out := make([]notp.Node, 0, len(nodes))
	r.healthMu.Lock()
	defer r.healthMu.Unlock()
	for _, n := range nodes {
		if h := r.health[n.ID]; h != HealthDead && h != HealthLeft {
			out = append(out, n)
		}
	}
	return out
}

// fingersLocked returns this node's gossip neighbours: with the live
// members ordered by chash.Token(ID, 1), the members at distances ±1, ±2,
// ±4, … from this node (at most 2·ceil(log2 N), all members in rings of up
// to 5 nodes). The relation is symmetric, so answers to a sender reuse the
// links gossip already uses, and the neighbour graph (which contains the
// ±1 cycle) is connected with diameter O(log N), so rumours and digests
// reach every member. Cached until the state changes.
func (r *Ring) fingersLocked() []notp.Node {
	if r.fingers != nil && r.fingerGen == r.gen {
		return r.fingers
	}
	type tok struct {
		t    uint64
		node notp.Node
	}
	var live []tok
	for _, e := range r.st.entries {
		if !e.Removed || e.Node.ID == r.self {
			live = append(live, tok{chash.Token(e.Node.ID, 1), e.Node})
		}
	}
	slices.SortFunc(live, func(a, b tok) int {
		if c := cmp.Compare(a.t, b.t); c != 0 {
			return c
		}
		return cmp.Compare(a.node.ID, b.node.ID)
	})
	n := len(live)
	me := slices.IndexFunc(live, func(x tok) bool { return x.node.ID == r.self })
	out := make([]notp.Node, 0, 16)
	seen := map[string]bool{r.self: true}
	add := func(i int) {
		if nd := live[((i%n)+n)%n].node; !seen[nd.ID] {
			seen[nd.ID] = true
			out = append(out, nd)
		}
	}
	for d := 1; me >= 0 && d < n; d <<= 1 {
		add(me + d)
		add(me - d)
	}
	r.fingers, r.fingerGen = out, r.gen
	return out
}

func compareStrings(a, b string) int { return cmp.Compare(a, b) }

// finish performs a merge's side effects outside the lock: kernel links,
// sends, events and the self-removal.
func (r *Ring) finish(act *afterMerge) {
	r.connectEager(act.diff.added)
	for _, n := range act.diff.removed {
		if n.ID != r.self {
			// Dropping the link of a removed node needs no wait: nothing
			// queued for it matters any more.
			_ = r.k.Disconnect(context.Background(), n.ID, true)
		}
	}
	for _, o := range act.sends {
		for _, n := range o.to {
			r.send(n, o.msg)
		}
		if len(o.to) > 0 && !act.selfRemoved {
			r.emit(EventSend, act.ringID, o.to)
		}
	}
	if act.selfRemoved {
		r.mu.Lock()
		r.pendingSelf = &pendingRemoval{ringID: act.ringID, epoch: act.epoch}
		r.mu.Unlock()
		r.later(r.trySelfRemoved)
	}
}

// connectEager opens kernel links to nodes ahead of need (LazyConnect
// false, as notp's full mesh), but never beyond MaxLinks links in the
// kernel: a ring may name thousands of nodes, and each link holds a
// socket, goroutines and buffers (and keeps redialling a node that is
// gone). Nodes beyond the bound are connected on first send, as with
// LazyConnect; gossip itself only sends to its O(log N) neighbours and to
// the nodes it answers.
func (r *Ring) connectEager(nodes []notp.Node) {
	if r.cfg.LazyConnect || len(nodes) == 0 {
		return
	}
	peers := r.k.Peers()
	linked := make(map[string]bool, len(peers))
	for _, p := range peers {
		linked[p.ID] = true
	}
	links := len(peers)
	for _, n := range nodes {
		if n.ID == r.self {
			continue
		}
		if !linked[n.ID] {
			if links >= r.cfg.MaxLinks {
				r.stats.linksDeferred.add()
				continue
			}
			links++
		}
		_ = r.k.Connect(n)
	}
}

// send casts msg to the ring handler on node, opening a kernel link when
// there is none.
func (r *Ring) send(node notp.Node, msg []byte) {
	name := r.handlerNameNow()
	if name == "" {
		return
	}
	if r.testSend != nil {
		r.stats.sent.add()
		r.testSend(node, msg)
		return
	}
	err := r.k.Cast(node, name, msg)
	if errors.Is(err, kernel.ErrUnknownNode) {
		if err = r.k.Connect(node); err == nil {
			err = r.k.Cast(node, name, msg)
		}
	}
	r.stats.sent.add()
	if err != nil {
		r.stats.sendErr.add()
		r.log.Debug("ring send failed", "peer", node.ID, "err", err)
	}
}

// snapshotEntries copies the entry map (for diffs of local changes).
func (s *state) snapshotEntries() map[string]codec.Entry { return maps.Clone(s.entries) }
