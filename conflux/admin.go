package conflux

// The operator view: the raft command that notp-cli's raft commands send.
// A node's stores share one command (cluster.Node.HandleCommand takes one
// handler per name); it is registered when the node's first store starts
// and removed when its last one stops.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/kernel"
)

// adminGroup is what the raft command needs of a store, without its type
// parameters.
type adminGroup interface {
	raftPeers(ctx context.Context) (command.RaftPeersData, error)
	raftTransfer(ctx context.Context, to string) (command.RaftOpData, error)
	raftRemovePeer(ctx context.Context, id string) (command.RaftOpData, error)
	raftSnapshot(ctx context.Context) (command.RaftOpData, error)
}

// admins are the groups each node runs, for its raft command.
var admins = struct {
	mu    sync.Mutex
	nodes map[*cluster.Node]*nodeAdmin
}{nodes: map[*cluster.Node]*nodeAdmin{}}

type nodeAdmin struct {
	groups     map[string]adminGroup
	unregister func()
}

// registerAdmin adds the group name of node to its raft command,
// registering the command for the node's first group.
func registerAdmin(node *cluster.Node, name string, g adminGroup) error {
	admins.mu.Lock()
	defer admins.mu.Unlock()
	na := admins.nodes[node]
	if na == nil {
		na = &nodeAdmin{groups: map[string]adminGroup{}}
		un, err := node.HandleCommand(command.Raft, func(ctx context.Context, args []byte, from kernel.From) cluster.CommandResult {
			return serveRaft(ctx, node, args)
		})
		if err != nil {
			return fmt.Errorf("conflux: register the raft command: %w", err)
		}
		na.unregister = un
		admins.nodes[node] = na
	}
	if _, taken := na.groups[name]; taken {
		return fmt.Errorf("%w: group %q already runs on this node", ErrInvalidConfig, name)
	}
	na.groups[name] = g
	return nil
}

// unregisterAdmin removes g from node's raft command, and the command
// with the node's last group.
func unregisterAdmin(node *cluster.Node, name string, g adminGroup) {
	admins.mu.Lock()
	defer admins.mu.Unlock()
	na := admins.nodes[node]
	if na == nil || na.groups[name] != g {
		return
	}
	delete(na.groups, name)
	if len(na.groups) == 0 {
		na.unregister()
		delete(admins.nodes, node)
	}
}

// adminGroupOf picks the group a request names ("" = the only one).
func adminGroupOf(node *cluster.Node, name string) (adminGroup, string, command.Reply, bool) {
	admins.mu.Lock()
	defer admins.mu.Unlock()
	na := admins.nodes[node]
	var names []string
	if na != nil {
		for n := range na.groups {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	switch {
	case name == "" && len(names) == 1:
		return na.groups[names[0]], names[0], command.Reply{}, true
	case name == "" && len(names) == 0:
		return nil, "", command.Fail(command.CodeFailed, "no conflux group runs on this node"), false
	case name == "":
		return nil, "", command.Fail(command.CodeBadRequest,
			fmt.Sprintf("several groups run on this node (%s): name one", strings.Join(names, ", "))), false
	}
	if g, ok := na.groups[name]; ok {
		return g, name, command.Reply{}, true
	}
	return nil, "", command.Fail(command.CodeFailed,
		fmt.Sprintf("no group %q on this node (it runs %s)", name, strings.Join(names, ", "))), false
}

// serveRaft answers one raft command on node.
func serveRaft(ctx context.Context, node *cluster.Node, args []byte) cluster.CommandResult {
	a, err := command.DecodeRaftArgs(args)
	if err != nil {
		return cluster.CommandResult{Reply: command.Fail(command.CodeBadRequest, err.Error())}
	}
	g, name, rep, ok := adminGroupOf(node, a.Group)
	res := cluster.CommandResult{Reply: rep, Mutating: a.Op != command.RaftPeers,
		Attrs: []any{"group", cmp.Or(name, a.Group), "op", a.Op}}
	if a.ID != "" {
		res.Attrs = append(res.Attrs, "target", a.ID)
	}
	if !ok {
		return res
	}
	var data any
	switch a.Op {
	case command.RaftPeers:
		data, err = g.raftPeers(ctx)
	case command.RaftTransfer:
		data, err = g.raftTransfer(ctx, a.ID)
	case command.RaftRemovePeer:
		data, err = g.raftRemovePeer(ctx, a.ID)
	case command.RaftSnapshot:
		data, err = g.raftSnapshot(ctx)
	}
	if err != nil {
		res.Reply = raftFailure(name, a.Op, err)
		return res
	}
	if res.Reply, err = command.OK(data); err != nil {
		res.Reply = command.Fail(command.CodeFailed, err.Error())
	}
	return res
}

// raftFailure is the reply of a failed operation: NOT_LEADER for a
// follower, FAILED otherwise.
func raftFailure(group, op string, err error) command.Reply {
	var nl *NotLeaderError
	if errors.As(err, &nl) {
		msg := fmt.Sprintf("raft %s of group %q must run on its leader; this node is not it and knows no leader", op, group)
		if nl.Leader.ID != "" {
			msg = fmt.Sprintf("raft %s of group %q must run on its leader: %s at %s", op, group, nl.Leader.ID, nl.Leader.Addr())
		}
		return command.Fail(command.CodeNotLeader, msg)
	}
	return command.Fail(command.CodeFailed, fmt.Sprintf("raft %s of group %q: %v", op, group, err))
}

// registerAdmin and unregisterAdmin for this store.
func (s *Store[S, A]) registerAdmin() error { return registerAdmin(s.ring.n, s.cfg.Name, s) }
func (s *Store[S, A]) unregisterAdmin()     { unregisterAdmin(s.ring.n, s.cfg.Name, s) }

// peerHelloTimeout bounds how long peers waits for each server's applied
// index (asked in parallel).
const peerHelloTimeout = 500 * time.Millisecond

func (s *Store[S, A]) raftPeers(ctx context.Context) (command.RaftPeersData, error) {
	r, err := s.running()
	if err != nil {
		return command.RaftPeersData{}, err
	}
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return command.RaftPeersData{}, fmt.Errorf("conflux: configuration: %w", err)
	}
	_, leader := r.LeaderWithID()
	self := s.ring.self().ID
	d := command.RaftPeersData{
		Group: s.cfg.Name, Node: self, State: strings.ToLower(r.State().String()), Leader: string(leader),
		Term: r.CurrentTerm(), LastIndex: r.LastIndex(), CommitIndex: r.CommitIndex(), AppliedIndex: r.AppliedIndex(),
		Peers: []command.RaftPeer{},
	}
	servers := f.Configuration().Servers
	applied := s.peerApplied(ctx, servers, self)
	for i, sv := range servers {
		d.Peers = append(d.Peers, command.RaftPeer{
			ID: string(sv.ID), Address: string(sv.Address), Suffrage: suffrageName(sv.Suffrage),
			Leader: sv.ID == leader, Applied: applied[i],
		})
	}
	return d, nil
}

func suffrageName(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return "voter"
	case raft.Nonvoter:
		return "nonvoter"
	}
	return "staging"
}

// peerApplied asks every server's store for its applied index in
// parallel, each within peerHelloTimeout; nil for those that did not
// answer. This node answers from its own state.
func (s *Store[S, A]) peerApplied(ctx context.Context, servers []raft.Server, self string) []*uint64 {
	out := make([]*uint64, len(servers))
	ctx, cancel := context.WithTimeout(ctx, peerHelloTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, sv := range servers {
		if string(sv.ID) == self {
			a := s.AppliedIndex()
			out[i] = &a
			continue
		}
		n, ok := nodeAt(string(sv.ID), string(sv.Address))
		if !ok {
			continue
		}
		wg.Go(func() {
			t := genserver.Target{Name: ServerName(s.cfg.Name), Node: n}
			if h, err := genserver.Call[helloReply](ctx, s.ring.kernel(), t, "hello", nil); err == nil {
				out[i] = &h.Applied
			}
		})
	}
	wg.Wait()
	return out
}

func (s *Store[S, A]) raftTransfer(ctx context.Context, to string) (command.RaftOpData, error) {
	if err := s.TransferLeadership(ctx, to); err != nil {
		return command.RaftOpData{}, err
	}
	d := command.RaftOpData{Group: s.cfg.Name, Op: command.RaftTransfer, Node: to}
	if r, err := s.running(); err == nil {
		_, id := r.LeaderWithID()
		d.Leader = string(id)
	}
	return d, nil
}

// raftRemovePeer removes server id from the group through the leader's
// RemoveServer. It refuses to remove the last voter, which would leave a
// group that can never commit again.
func (s *Store[S, A]) raftRemovePeer(ctx context.Context, id string) (command.RaftOpData, error) {
	r, err := s.running()
	if err != nil {
		return command.RaftOpData{}, err
	}
	if r.State() != raft.Leader {
		l, _ := s.Leader()
		return command.RaftOpData{}, &NotLeaderError{Leader: l}
	}
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return command.RaftOpData{}, fmt.Errorf("conflux: configuration: %w", err)
	}
	voters, target := 0, -1
	servers := f.Configuration().Servers
	for i, sv := range servers {
		if sv.Suffrage == raft.Voter {
			voters++
		}
		if string(sv.ID) == id {
			target = i
		}
	}
	switch {
	case target < 0:
		return command.RaftOpData{}, fmt.Errorf("conflux: %q is not a server of the group", id)
	case servers[target].Suffrage == raft.Voter && voters == 1:
		return command.RaftOpData{}, fmt.Errorf("conflux: %q is the group's last voter: removing it would leave the group without a quorum", id)
	}
	if err := s.await(ctx, r.RemoveServer(raft.ServerID(id), f.Index(), 0)); err != nil {
		return command.RaftOpData{}, fmt.Errorf("conflux: remove %q: %w", id, err)
	}
	s.log.Info("removed from group by an operator", "node", id)
	return command.RaftOpData{Group: s.cfg.Name, Op: command.RaftRemovePeer, Node: id}, nil
}

// raftSnapshot takes a snapshot on this node now.
func (s *Store[S, A]) raftSnapshot(ctx context.Context) (command.RaftOpData, error) {
	r, err := s.running()
	if err != nil {
		return command.RaftOpData{}, err
	}
	f := r.Snapshot()
	if err := s.await(ctx, f); err != nil {
		if errors.Is(err, raft.ErrNothingNewToSnapshot) {
			return command.RaftOpData{}, fmt.Errorf("conflux: snapshot: nothing new since the last one: %w", err)
		}
		return command.RaftOpData{}, fmt.Errorf("conflux: snapshot: %w", err)
	}
	meta, rc, err := f.Open()
	if err != nil {
		return command.RaftOpData{}, fmt.Errorf("conflux: snapshot: open: %w", err)
	}
	rc.Close()
	return command.RaftOpData{Group: s.cfg.Name, Op: command.RaftSnapshot, Index: meta.Index, Term: meta.Term}, nil
}
