//go:build e2e && linux

package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"
)

// gossipToTheDead is memberlist's LAN GossipToTheDeadTime, which the
// nodes run with: after it a dead member is forgotten and no longer
// contacted by memberlist itself.
const gossipToTheDead = 30 * time.Second

// healthView returns n's view of every ring node's health ("" on error).
func (e *nsEnv) healthView(n *nsNode) map[string]string {
	r, code := e.cli(n, 15*time.Second, "nodes")
	if code != 0 || !r.OK {
		return nil
	}
	var ns []nodeHealth
	if json.Unmarshal(r.Data, &ns) != nil {
		return nil
	}
	h := map[string]string{}
	for _, x := range ns {
		h[x.ID] = x.Health
	}
	return h
}

// sees reports whether n sees every node of ids with health want.
func (e *nsEnv) sees(n *nsNode, want string, ids ...string) (bool, string) {
	h := e.healthView(n)
	for _, id := range ids {
		if h[id] != want {
			return false, fmt.Sprintf("%s sees %v", n.id, h)
		}
	}
	return true, ""
}

// waitUntil polls cond every 300 ms until it holds or deadline passes.
func (e *nsEnv) waitUntil(what string, deadline time.Time, cond func() (bool, string)) {
	e.t.Helper()
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s; last seen: %s", what, seen)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func idsOf(ns []*nsNode) []string {
	var ids []string
	for _, n := range ns {
		ids = append(ids, n.id)
	}
	return ids
}

// A 2|3 split between node processes that outlasts memberlist's
// GossipToTheDeadTime with its default (LAN) timings: each side has
// declared the other dead and forgotten it, so only the reconnect loop
// ever contacts the other side again. After the heal the rings agree and
// every node sees every node alive within about one reconnect interval
// (30 s, jittered by up to 20 %), without a meet.
func TestLongPartitionInNetworkNamespaces(t *testing.T) {
	e := newNSEnv(t)
	for _, n := range e.nodes {
		e.start(n)
	}
	ids := idsOf(e.nodes)
	for _, n := range e.nodes[1:] {
		if err := e.mustCLI(e.nodes[0], "meet", n.id, n.ip, "7022"); err != nil {
			t.Fatal(err)
		}
	}
	e.waitAgree("the five-node ring", 60*time.Second, e.nodes, ids)
	for _, n := range e.nodes {
		e.waitUntil(n.id+" seeing all alive", time.Now().Add(60*time.Second), func() (bool, string) {
			return e.sees(n, "alive", ids...)
		})
	}

	left, right := e.nodes[:2], e.nodes[2:]
	e.move("br1", left...)
	split := time.Now()
	deadBy := time.Now().Add(90 * time.Second)
	for _, n := range e.nodes {
		others := idsOf(right)
		if slices.Contains(right, n) {
			others = idsOf(left)
		}
		e.waitUntil(n.id+" seeing the other side dead", deadBy, func() (bool, string) { return e.sees(n, "dead", others...) })
	}
	// The split lasts past GossipToTheDeadTime; the sides stay apart all
	// along.
	allDead := time.Now()
	for time.Since(allDead) < gossipToTheDead+5*time.Second {
		if ok, seen := e.sees(e.nodes[0], "dead", idsOf(right)...); !ok {
			t.Fatalf("the split leaked: %s", seen)
		}
		time.Sleep(time.Second)
	}

	e.move("br0", left...)
	healed := time.Now()
	healBy := healed.Add(45 * time.Second)
	e.waitAgree("every ring equal after the heal", time.Until(healBy), e.nodes, ids)
	ringsAt := time.Since(healed)
	for _, n := range e.nodes {
		e.waitUntil(n.id+" seeing every node alive", healBy, func() (bool, string) { return e.sees(n, "alive", ids...) })
	}
	t.Logf("split of %v (%v with the other side dead): rings agree %v and every node sees every node alive %v after the heal",
		healed.Sub(split).Round(time.Second), healed.Sub(allDead).Round(time.Second),
		ringsAt.Round(100*time.Millisecond), time.Since(healed).Round(100*time.Millisecond))
}
