package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/kernel"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster/internal/cmdargs"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/internal/testutil/mltest"
)

// FuzzCommand sends random payloads for every command through the command
// server's request handling (member check, decoding, validation, dispatch,
// reply encoding) against a real started node, in process. Nothing may
// panic or hang; every reply decodes, and a refused payload is a
// BAD_REQUEST. The state the commands leave carries over from one input
// to the next, as it would on a node under a stream of commands. Meet is
// decoded and validated but not run: it would dial the fuzzed host.
func FuzzCommand(f *testing.F) {
	seed := func(a command.Args) []byte {
		b, err := command.EncodeArgs(a)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	n := notp.Node{ID: "b", Host: "127.0.0.1", Port: 1}
	for i, name := range command.Names {
		f.Add(uint8(i), []byte(nil))
		switch name {
		case command.Get, command.Has, command.Weight, command.Join:
			f.Add(uint8(i), seed(command.Args{ID: "b"}))
		case command.Insert, command.Update, command.Remove:
			f.Add(uint8(i), seed(command.Args{Node: &n, Weight: 2}))
		case command.MInsert, command.MRemove:
			f.Add(uint8(i), seed(command.Args{Nodes: []notp.Node{n}, Force: true}))
		}
	}
	f.Add(uint8(0), []byte{0xc1})
	node, cs := fuzzNode(f)
	cmds := cs.handlers()
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		name := command.Names[int(which)%len(command.Names)]
		if name == command.Meet {
			if a, _, ok := cmdargs.Decode(name, data); ok && a.Node.Validate() != nil {
				t.Fatalf("meet accepted node %+v", a.Node)
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req := genserver.Request{Event: name, Data: data, From: kernel.From{Node: notp.Node{ID: "operator"}}}
		out, err := cs.wrap(name, cmds[name])(ctx, req)
		if err != nil {
			t.Fatalf("%s: handler error %v", name, err)
		}
		rep, err := command.DecodeReply(out)
		if err != nil {
			t.Fatalf("%s: reply does not decode: %v", name, err)
		}
		if _, _, ok := cmdargs.Decode(name, data); !ok && (rep.OK || rep.Error.Code != command.CodeBadRequest) {
			t.Fatalf("%s: refused payload answered %+v", name, rep)
		}
		// Whatever the command did, the node still answers.
		ping, err := cs.wrap(command.Ping, cmds[command.Ping])(ctx, genserver.Request{Event: command.Ping, From: req.From})
		if rep, derr := command.DecodeReply(ping); err != nil || derr != nil || !rep.OK {
			t.Fatalf("after %s: ping = %+v, %v, %v", name, rep, err, derr)
		}
		trimRing(t, node)
	})
}

// fuzzRingNodes is how many nodes FuzzCommand's ring may hold before it
// is cut back to its own node. The inserts of a long campaign would
// otherwise pile up (up to 10,000 nodes of up to 4,096 tokens each), and
// every later input would run against that ring, each command costing
// more than the last, instead of against a ring of ordinary size.
const fuzzRingNodes = 64

// trimRing removes every other node from node's ring once it holds more
// than fuzzRingNodes.
func trimRing(t testing.TB, node *Node) {
	nodes := node.Ring().View().Nodes()
	if len(nodes) <= fuzzRingNodes {
		return
	}
	others := slices.DeleteFunc(nodes, func(n notp.Node) bool { return n.ID == node.Self().ID })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.Ring().MRemove(ctx, others, true); err != nil {
		t.Fatalf("trimming the ring of %d nodes: %v", len(nodes), err)
	}
}

// fuzzNode starts a single node on loopback for FuzzCommand and returns it
// with a command server over its real ring (members allowed, so any
// sender passes the member check and reaches decoding).
func fuzzNode(f testing.TB) (*Node, *commandServer) {
	node, err := New(Config{
		Node:   notp.Node{ID: "a", Host: "127.0.0.1"},
		Cookie: "fuzz-cookie-of-32-bytes-at-least",
		Gossip: gossip.Config{Memberlist: mltest.FastConfig()},
		// A command against nodes that do not exist must not stall the
		// fuzzer: forced and waiting operations give up quickly.
		CommandTimeout: 50 * time.Millisecond,
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := node.Start(ctx, "ring"); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = node.Stop(context.Background()) })
	cs := &commandServer{
		ring: node.ring, self: node.k.Self, health: node.health,
		timeout: 50 * time.Millisecond, allowMembers: true,
		log: slog.New(slog.DiscardHandler),
	}
	return node, cs
}

// trimRing cuts FuzzCommand's ring back to its own node once it holds
// more than fuzzRingNodes, and leaves a smaller ring alone.
func TestFuzzRingTrimmed(t *testing.T) {
	node, _ := fuzzNode(t)
	insert := func(from, to int) {
		var ns []notp.Node
		for i := from; i < to; i++ {
			ns = append(ns, notp.Node{ID: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: 1000 + i})
		}
		if err := node.Ring().MInsert(context.Background(), ns, 1, true); err != nil {
			t.Fatal(err)
		}
	}
	insert(0, fuzzRingNodes-1)
	trimRing(t, node)
	if got := node.Ring().View().NumberNodes(); got != fuzzRingNodes {
		t.Fatalf("a ring of %d nodes was trimmed to %d", fuzzRingNodes, got)
	}
	insert(fuzzRingNodes, fuzzRingNodes+1)
	trimRing(t, node)
	if got := node.Ring().View().Nodes(); len(got) != 1 || got[0].ID != node.Self().ID {
		t.Fatalf("after trimming a ring of %d nodes it holds %v, want only this node", fuzzRingNodes+1, got)
	}
}
