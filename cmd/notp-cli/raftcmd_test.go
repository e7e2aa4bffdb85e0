package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/cmd/notp-cli/internal/cmdline"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/conflux"
)

// raftGroup starts three nodes running a conflux counter group and
// returns them with the stores, once a leader is elected.
func raftGroup(t *testing.T) (*clustertest.Cluster, []*conflux.Store[int, int]) {
	t.Helper()
	c := clustertest.Start(t, clustertest.Config{Nodes: 3})
	var stores []*conflux.Store[int, int]
	for _, nd := range c.Nodes() {
		s, err := conflux.New(nd, conflux.Config[int, int]{
			Name: "counter",
			Methods: map[string]conflux.Method[int, int]{
				"add": func(int, []byte) (int, error) { return 1, nil },
			},
			Reduce:          func(n, d int) int { return n + d },
			BootstrapExpect: 3,
			// Raft's default timings: shorter ones lose leaders on a
			// loaded machine, which the steps below do not expect.
			ReconcileInterval: 200 * time.Millisecond,
			Logger:            clustertest.Logger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = s.Start(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Stop(context.Background()) })
		stores = append(stores, s)
	}
	clustertest.WaitFor(t, "a leader every node knows", func() bool {
		l0, ok := stores[0].Leader()
		for _, s := range stores {
			if l, ok2 := s.Leader(); !ok || !ok2 || l.ID != l0.ID {
				return false
			}
		}
		return true
	})
	return c, stores
}

// leaderIndex returns the index of the group's leader.
func leaderIndex(t *testing.T, c *clustertest.Cluster, s *conflux.Store[int, int]) int {
	t.Helper()
	l, _ := s.Leader()
	for i, nd := range c.Nodes() {
		if nd.Self().ID == l.ID {
			return i
		}
	}
	t.Fatalf("leader %q is no node", l.ID)
	return -1
}

func raftCLI(c *clustertest.Cluster, nd *cluster.Node, args ...string) (int, string, string) {
	return cliTo(nd.Self(), c.Cookie(), 10*time.Second, nil, append([]string{"raft"}, args...)...)
}

// One-shot raft commands against a real three-node group: peers as JSON
// and text, transfer, snapshot and remove-peer, the leader-only
// operations refused on a follower (exit 1), usage errors (exit 2).
func TestOneShotRaft(t *testing.T) {
	c, stores := raftGroup(t)
	for range 3 {
		if _, err := stores[0].Perform(t.Context(), "add", nil); err != nil {
			t.Fatal(err)
		}
	}
	li := leaderIndex(t, c, stores[0])
	leader := c.Node(li)
	fi := (li + 1) % 3
	follower := c.Node(fi)

	code, out, errs := raftCLI(c, follower, "peers")
	if code != exitOK || errs != "" {
		t.Fatalf("peers: exit %d stderr %q\n%s", code, errs, out)
	}
	r := decodeOutput(t, out)
	d, err := command.DecodeRaftPeers(r.Data)
	if err != nil || d.Node != follower.Self().ID || d.State != "follower" || d.Leader != leader.Self().ID || len(d.Peers) != 3 {
		t.Fatalf("peers: %+v %v", d, err)
	}

	code, out, _ = raftCLI(c, leader, "peers", "--format", "text", "--group", "counter")
	t.Logf("notp-cli raft peers --format text:\n%s", out)
	for _, want := range []string{"group          counter\n", "state          leader\n", "peers:\n  ID  ADDRESS", "voter     true", "voter     false"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Fatalf("peers text: exit %d, lacks %q:\n%s", code, want, out)
		}
	}

	code, out, _ = raftCLI(c, follower, "transfer")
	if r := decodeOutput(t, out); code != exitFail || r.OK || r.Error.Code != command.CodeNotLeader ||
		!strings.Contains(r.Error.Message, leader.Self().ID) {
		t.Fatalf("transfer on a follower: exit %d\n%s", code, out)
	}
	code, out, _ = raftCLI(c, leader, "peers", "--group", "nope")
	if code != exitFail || !strings.Contains(out, `no group \"nope\"`) {
		t.Fatalf("unknown group: exit %d\n%s", code, out)
	}

	code, out, _ = raftCLI(c, follower, "snapshot", "--format", "json")
	var snap command.RaftOpData
	if err := decodeOutput(t, out).Decode(&snap); code != exitOK || err != nil || snap.Index == 0 {
		t.Fatalf("snapshot: exit %d %v\n%s", code, err, out)
	}

	code, out, _ = raftCLI(c, leader, "transfer", follower.Self().ID)
	if code != exitOK {
		t.Fatalf("transfer: exit %d\n%s", code, out)
	}
	clustertest.WaitFor(t, "the new leader", func() bool {
		l, ok := stores[li].Leader()
		l2, ok2 := stores[fi].Leader()
		return ok && ok2 && l.ID == follower.Self().ID && l2.ID == follower.Self().ID
	})

	// The third node dies (a dead machine still in the ring, which the
	// leader does not remove by itself): remove it from the group.
	oi := 3 - li - fi
	stores[oi].Stop(t.Context())
	c.Stop(oi)
	// Sent to the leader of the moment: losing a voter may cost an
	// election, after which the old leader answers NOT_LEADER.
	var at *cluster.Node
	clustertest.WaitFor(t, "remove-peer on the leader", func() bool {
		l, ok := stores[fi].Leader()
		if !ok || l.ID == c.Node(oi).Self().ID {
			return false
		}
		for _, nd := range c.Nodes() {
			if nd.Self().ID == l.ID {
				at = nd
			}
		}
		code, out, _ = raftCLI(c, at, "remove-peer", c.Node(oi).Self().ID, "--format", "text")
		if code != exitOK && !strings.Contains(out, command.CodeNotLeader) {
			t.Fatalf("remove-peer: exit %d\n%s", code, out)
		}
		return code == exitOK
	})
	if !strings.Contains(out, "remove-peer") {
		t.Fatalf("remove-peer output:\n%s", out)
	}
	_, out, _ = raftCLI(c, at, "peers")
	if d, err := command.DecodeRaftPeers(decodeOutput(t, out).Data); err != nil || len(d.Peers) != 2 {
		t.Fatalf("peers after remove-peer: %+v %v", d, err)
	}

	for _, bad := range [][]string{{}, {"vote"}, {"peers", "x"}, {"remove-peer"}, {"transfer", "a", "b"},
		{"peers", "--group"}, {"peers", "--group", "a b"}, {"remove-peer", "a@b"}} {
		code, out, errs := raftCLI(c, leader, bad...)
		if code != exitUsage || out != "" || !strings.Contains(errs, "Usage: notp-cli [flags] raft") {
			t.Errorf("raft %v: exit %d stdout %q stderr %q", bad, code, out, errs)
		}
	}
}

// The shell runs raft commands, with their help and usage errors.
func TestShellRaft(t *testing.T) {
	c, stores := raftGroup(t)
	if _, err := stores[0].Perform(t.Context(), "add", nil); err != nil {
		t.Fatal(err) // something for the snapshot to hold
	}
	li := leaderIndex(t, c, stores[0])
	script := strings.Join([]string{"help raft", "raft peers --format text", "raft snapshot", "raft remove-peer", "raft transfer", "exit"}, "\n") + "\n"
	code, out, errs := cliTo(c.Node(li).Self(), c.Cookie(), 10*time.Second, strings.NewReader(script))
	if code != exitOK || errs != "" {
		t.Fatalf("exit %d stderr %q\n%s", code, errs, out)
	}
	wants := []string{
		"Usage: raft " + cmdline.RaftUsage, "--group <name>",
		"> group          counter\nnode           " + c.Node(li).Self().ID + "\nstate          leader\n",
		`"op": "snapshot"`,
		"> raft: remove-peer takes one <id>, got 0 arguments\nUsage: raft ",
		`"op": "transfer"`,
	}
	wantInOrder(t, out, wants...)
	clustertest.WaitFor(t, "a new leader", func() bool {
		l, ok := stores[li].Leader()
		return ok && l.ID != c.Node(li).Self().ID
	})
}
