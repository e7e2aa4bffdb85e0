package conflux

import (
	"strings"
	"testing"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/kernel"
)

// adminClient is an operator's kernel outside the ring.
func adminClient(t *testing.T) *kernel.Kernel {
	t.Helper()
	return clustertest.StartKernel(t, kernel.Config{Node: notp.Node{ID: "operator", Host: "127.0.0.1"}, Cookie: testCookie})
}

// raftCmd sends the raft command to node and returns the reply.
func raftCmd(t *testing.T, k *kernel.Kernel, node *cluster.Node, a command.RaftArgs) command.Reply {
	t.Helper()
	b, err := command.EncodeRaftArgs(a)
	if err != nil {
		t.Fatal(err)
	}
	r, err := command.DoRaw(ctxT(t), k, node.Self(), command.Raft, b)
	if err != nil {
		t.Fatalf("raft %s on %s: %v", a.Op, node.Self().ID, err)
	}
	return r
}

func raftPeersOf(t *testing.T, k *kernel.Kernel, node *cluster.Node) command.RaftPeersData {
	t.Helper()
	r := raftCmd(t, k, node, command.RaftArgs{Op: command.RaftPeers})
	if !r.OK {
		t.Fatalf("peers on %s: %+v", node.Self().ID, r.Error)
	}
	d, err := command.DecodeRaftPeers(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func wantCode(t *testing.T, r command.Reply, code, contains string) {
	t.Helper()
	if r.OK || r.Error.Code != code || !strings.Contains(r.Error.Message, contains) {
		t.Fatalf("reply %+v, want %s containing %q", r.Error, code, contains)
	}
}

// The raft command shows every node the same configuration and leader,
// hands leadership over, takes snapshots and removes a server, with the
// leader-only operations refused on followers.
func TestRaftCommandThreeNodes(t *testing.T) {
	g := newGroup(t, 3, nil)
	k := adminClient(t)
	li := g.leader()
	leaderID := g.nodes[li].Self().ID
	for i := range 5 {
		if _, err := g.stores[i%3].Perform(ctxT(t), "add", 1); err != nil {
			t.Fatal(err)
		}
	}
	for i, nd := range g.nodes {
		d := raftPeersOf(t, k, nd)
		if d.Group != "counter" || d.Node != nd.Self().ID || d.Leader != leaderID || d.Term == 0 || d.CommitIndex == 0 {
			t.Fatalf("n%d: peers %+v", i, d)
		}
		if want := map[bool]string{true: "leader", false: "follower"}[i == li]; d.State != want {
			t.Fatalf("n%d: state %q, want %q", i, d.State, want)
		}
		if len(d.Peers) != 3 {
			t.Fatalf("n%d: %d peers", i, len(d.Peers))
		}
		for _, p := range d.Peers {
			if p.Suffrage != "voter" || p.Leader != (p.ID == leaderID) || p.Applied == nil || p.Address == "" {
				t.Fatalf("n%d: peer %+v", i, p)
			}
		}
	}

	fi := (li + 1) % 3
	follower := g.nodes[fi]
	wantCode(t, raftCmd(t, k, follower, command.RaftArgs{Op: command.RaftTransfer}), command.CodeNotLeader, leaderID)
	wantCode(t, raftCmd(t, k, follower, command.RaftArgs{Op: command.RaftRemovePeer, ID: leaderID}), command.CodeNotLeader, leaderID)
	wantCode(t, raftCmd(t, k, g.nodes[li], command.RaftArgs{Op: command.RaftRemovePeer, ID: "nobody"}), command.CodeFailed, "not a server")
	wantCode(t, raftCmd(t, k, g.nodes[li], command.RaftArgs{Op: "vote"}), command.CodeBadRequest, "raft operation")
	wantCode(t, raftCmd(t, k, g.nodes[li], command.RaftArgs{Op: command.RaftPeers, Group: "other"}), command.CodeFailed, `no group "other"`)

	r := raftCmd(t, k, follower, command.RaftArgs{Op: command.RaftSnapshot})
	var snap command.RaftOpData
	if err := r.Decode(&snap); err != nil || snap.Index == 0 || snap.Term == 0 {
		t.Fatalf("snapshot: %+v %v", snap, err)
	}

	// Transfer to the follower fi.
	target := follower.Self().ID
	r = raftCmd(t, k, g.nodes[li], command.RaftArgs{Op: command.RaftTransfer, ID: target})
	var tr command.RaftOpData
	if err := r.Decode(&tr); err != nil || tr.Node != target {
		t.Fatalf("transfer: %+v %v", tr, err)
	}
	if nl := g.leader(); nl != fi {
		t.Fatalf("leader after transfer to n%d is n%d", fi, nl)
	}

	// The third node dies (a dead machine still in the ring, which the
	// leader does not remove by itself): remove it from the group.
	oi := 3 - li - fi
	g.stores[oi].Stop(ctxT(t))
	if err := g.nodes[oi].Stop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// Sent to the leader of the moment: losing a voter may cost an
	// election, after which the old leader answers NOT_LEADER.
	var at *cluster.Node
	waitFor(t, "remove-peer on the leader", func() bool {
		l, ok := g.stores[fi].Leader()
		if !ok || l.ID == g.nodes[oi].Self().ID {
			return false
		}
		for _, nd := range g.nodes {
			if nd.Self().ID == l.ID {
				at = nd
			}
		}
		r = raftCmd(t, k, at, command.RaftArgs{Op: command.RaftRemovePeer, ID: g.nodes[oi].Self().ID})
		if !r.OK && r.Error.Code != command.CodeNotLeader {
			t.Fatalf("remove-peer: %+v", r.Error)
		}
		return r.OK
	})
	var rm command.RaftOpData
	if err := r.Decode(&rm); err != nil || rm.Node != g.nodes[oi].Self().ID {
		t.Fatalf("remove-peer: %+v %v", rm, err)
	}
	d := raftPeersOf(t, k, at)
	if len(d.Peers) != 2 {
		t.Fatalf("peers after remove: %+v", d.Peers)
	}
	for _, p := range d.Peers {
		if p.ID == g.nodes[oi].Self().ID {
			t.Fatalf("removed server still listed: %+v", d.Peers)
		}
	}
}

// On a node with two groups the request must name one; the last voter
// cannot be removed; stopping the last store removes the command.
func TestRaftCommandGroupsAndLastVoter(t *testing.T) {
	g := newGroup(t, 1, nil)
	k := adminClient(t)
	nd := g.nodes[0]
	wantCode(t, raftCmd(t, k, nd, command.RaftArgs{Op: command.RaftRemovePeer, ID: nd.Self().ID}), command.CodeFailed, "last voter")

	cfg := counterConfig(t, nil, 1)
	cfg.Name = "other"
	other := g.startStore(nd, cfg)
	wantCode(t, raftCmd(t, k, nd, command.RaftArgs{Op: command.RaftPeers}), command.CodeBadRequest, "counter, other")
	waitFor(t, "other's leader", func() bool { _, ok := other.Leader(); return ok })
	if d := raftPeersOf2(t, k, nd, "other"); d.Group != "other" || len(d.Peers) != 1 {
		t.Fatalf("peers of other: %+v", d)
	}
	g.stores[0].Stop(ctxT(t))
	if d := raftPeersOf(t, k, nd); d.Group != "other" {
		t.Fatalf("the only group left: %+v", d)
	}
	other.Stop(ctxT(t))
	wantCode(t, raftCmd(t, k, nd, command.RaftArgs{Op: command.RaftPeers}), command.CodeUnknownCommand, "")
}

func raftPeersOf2(t *testing.T, k *kernel.Kernel, node *cluster.Node, group string) command.RaftPeersData {
	t.Helper()
	r := raftCmd(t, k, node, command.RaftArgs{Op: command.RaftPeers, Group: group})
	d, err := command.DecodeRaftPeers(r.Data)
	if !r.OK || err != nil {
		t.Fatalf("peers of %s: %+v %v", group, r.Error, err)
	}
	return d
}
