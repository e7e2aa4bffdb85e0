package conflux

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/hashicorp/raft"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/lifecycle"
)

// helloReply is a node's answer to "hello": that it runs the group, how
// far it has applied, whether it belongs to a group configuration yet,
// and the voter set it would bootstrap.
type helloReply struct {
	Applied    uint64   `msgpack:"a"`
	Configured bool     `msgpack:"c"`
	Boot       []string `msgpack:"b,omitempty"`
}

func (s *Store[S, A]) hello() helloReply {
	s.bootMu.Lock()
	boot := slices.Clone(s.bootSet)
	s.bootMu.Unlock()
	return helloReply{Applied: s.AppliedIndex(), Configured: s.configured(), Boot: boot}
}

// maxHelloBoot bounds the bootstrap set a peer may report.
const maxHelloBoot = 64

// configured reports whether this node belongs to a group configuration.
func (s *Store[S, A]) configured() bool {
	r, err := s.running()
	if err != nil {
		return false
	}
	f := r.GetConfiguration()
	return f.Error() == nil && len(f.Configuration().Servers) > 0
}

// askHello asks the node id's group server for its hello; ok is false
// when it does not run the group or does not answer within a second.
func (s *Store[S, A]) askHello(ctx context.Context, m ringMember) (helloReply, bool) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	t := genserver.Target{Name: ServerName(s.cfg.Name), Node: m.node}
	h, err := genserver.Call[helloReply](ctx, s.ring.kernel(), t, "hello", nil)
	if err != nil || len(h.Boot) > maxHelloBoot {
		return helloReply{}, false
	}
	return h, true
}

// kick wakes the reconcile loop.
func (s *Store[S, A]) kick() {
	select {
	case s.kickCh <- struct{}{}:
	default:
	}
}

// reconcileLoop follows the ring: it bootstraps the group when asked to,
// and on the leader adds, promotes and removes members.
func (s *Store[S, A]) reconcileLoop() {
	defer s.wg.Done()
	changes, cancel := s.ring.subscribe()
	defer func() {
		cancel()
		for range changes { // the subscription's goroutine ends with it
		}
	}()
	t := time.NewTicker(s.cfg.ReconcileInterval)
	defer t.Stop()
	ctx, stop := context.WithCancel(lifecycle.DoneContext(s.done))
	defer stop()
	s.reconcile(ctx)
	for {
		select {
		case <-s.done:
			return
		case c, ok := <-changes:
			if !ok {
				return
			}
			for _, n := range c.removed {
				s.removed.Store(n.ID, struct{}{})
			}
			if c.selfRemoved {
				s.stepDown(ctx)
			}
		case <-s.kickCh:
		case <-t.C:
		}
		s.reconcile(ctx)
	}
}

// stepDown hands leadership over when this node left the ring, so that a
// leader that remains can remove it from the group.
func (s *Store[S, A]) stepDown(ctx context.Context) {
	if r, err := s.running(); err == nil && r.State() == raft.Leader {
		if err := s.await(ctx, r.LeadershipTransfer()); err != nil {
			s.log.Warn("leadership transfer after leaving the ring failed", "err", err)
		}
	}
}

func (s *Store[S, A]) reconcile(ctx context.Context) {
	r, err := s.running()
	if err != nil {
		return
	}
	if !s.configured() {
		if s.cfg.BootstrapExpect > 0 {
			s.tryBootstrap(ctx, r)
		}
		return
	}
	if r.State() != raft.Leader {
		return
	}
	f := r.GetConfiguration()
	if f.Error() != nil {
		return
	}
	servers := f.Configuration().Servers
	members := s.ring.members()
	self := s.ring.self().ID
	voters := 0
	inGroup := map[string]raft.Server{}
	for _, sv := range servers {
		inGroup[string(sv.ID)] = sv
		if sv.Suffrage == raft.Voter {
			voters++
		}
	}
	// A node removed from the ring leaves the group; one that is only
	// unreachable stays (removing it could cost the quorum).
	for id := range inGroup {
		if _, gone := s.removed.Load(id); gone && id != self {
			if _, back := members[id]; !back {
				if s.await(ctx, r.RemoveServer(raft.ServerID(id), 0, 0)) == nil {
					s.log.Info("removed from group: left the ring", "node", id)
					s.removed.Delete(id)
				}
				return // one change at a time; the next round continues
			}
			s.removed.Delete(id)
		}
	}
	s.removed.Range(func(id, _ any) bool {
		if _, in := inGroup[id.(string)]; !in {
			s.removed.Delete(id) // never a member, or already gone
		}
		return true
	})
	ids := make([]string, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		m := members[id]
		sv, in := inGroup[id]
		if id == self || !m.alive || (in && sv.Suffrage == raft.Voter) {
			continue
		}
		h, ok := s.askHello(ctx, m)
		if !ok {
			continue
		}
		addr := raft.ServerAddress(m.node.Addr())
		switch {
		case !in:
			if s.await(ctx, r.AddNonvoter(raft.ServerID(id), addr, 0, 0)) == nil {
				s.log.Info("added to group as non-voter", "node", id)
			}
			return
		case voters < s.cfg.Voters && h.Applied+catchUpLag >= r.CommitIndex():
			if s.await(ctx, r.AddVoter(raft.ServerID(id), addr, 0, 0)) == nil {
				s.log.Info("promoted to voter", "node", id)
			}
			return
		}
	}
}

// catchUpLag is how far behind the leader's commit index a non-voter may
// be when it is promoted.
const catchUpLag = 64

// tryBootstrap forms the group when BootstrapExpect ring members run it
// without a configuration and all of them would bootstrap the same voter
// set (the BootstrapExpect lowest IDs among them). Several nodes
// bootstrapping the same set is safe: Raft ignores all but one.
func (s *Store[S, A]) tryBootstrap(ctx context.Context, r *raft.Raft) {
	members := s.ring.members()
	ids := make([]string, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	self := s.ring.self().ID
	var set []string
	hellos := map[string]helloReply{}
	for _, id := range ids {
		if len(set) == s.cfg.BootstrapExpect {
			break
		}
		if id == self {
			set = append(set, id)
			continue
		}
		h, ok := s.askHello(ctx, members[id])
		if !ok {
			continue
		}
		if h.Configured {
			return // a group exists: wait to be added
		}
		hellos[id] = h
		set = append(set, id)
	}
	s.bootMu.Lock()
	s.bootSet = set
	s.bootMu.Unlock()
	if len(set) < s.cfg.BootstrapExpect || !slices.Contains(set, self) {
		return
	}
	for id, h := range hellos {
		if !slices.Contains(set, id) {
			continue
		}
		if !slices.Equal(h.Boot, set) {
			return // not all agree yet; the next round asks again
		}
	}
	var cfg raft.Configuration
	for _, id := range set {
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(members[id].node.Addr())})
	}
	if err := r.BootstrapCluster(cfg).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		s.log.Warn("bootstrap failed", "err", err)
		return
	}
	s.log.Info("bootstrapped group", "voters", set)
}
