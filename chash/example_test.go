package chash_test

import (
	"fmt"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/chash"
)

func members() []notp.Node {
	return []notp.Node{
		{ID: "alpha", Host: "10.0.0.1", Port: 7022},
		{ID: "beta", Host: "10.0.0.2", Port: 7022},
		{ID: "gamma", Host: "10.0.0.3", Port: 7022},
	}
}

// Sharding keys: each key is stored on the node that owns it.
func ExampleRing_OwnerString() {
	ring := chash.New(64, 2) // 64 tokens per node for an even spread
	for _, n := range members() {
		ring.Insert(n, 0)
	}
	for _, key := range []string{"user:1", "user:2", "user:3", "user:4"} {
		owner, _ := ring.OwnerString(key)
		fmt.Println(key, "->", owner.ID)
	}
	// Output:
	// user:1 -> beta
	// user:2 -> beta
	// user:3 -> beta
	// user:4 -> gamma
}

// Preference lists: the owner of a key and its successors, where replicas
// of the key live. A reused buffer keeps lookups allocation-free.
func ExampleRing_AppendRangeNext() {
	ring := chash.New(64, 2)
	for _, n := range members() {
		ring.Insert(n, 0)
	}
	buf := make([]notp.Node, 0, ring.PFactor()+1)
	for _, key := range []string{"order:17", "order:18"} {
		buf = ring.AppendRangeNext(buf[:0], []byte(key), ring.PFactor()+1)
		fmt.Print(key, ":")
		for _, n := range buf {
			fmt.Print(" ", n.Addr())
		}
		fmt.Println()
	}
	// Removing a node only moves the keys it owned.
	ring.Remove("beta")
	fmt.Println(ring.NumberNodes(), "nodes,", ring.Size(), "tokens")
	// Output:
	// order:17: 10.0.0.3:7022 10.0.0.2:7022 10.0.0.1:7022
	// order:18: 10.0.0.2:7022 10.0.0.1:7022 10.0.0.3:7022
	// 2 nodes, 128 tokens
}

// Next lists the nodes that follow a node on the ring: those that take over
// its keys if it leaves.
func ExampleRing_Next() {
	ring := chash.New(1, 1)
	for _, id := range []string{"a", "b", "c", "d"} {
		ring.Insert(notp.Node{ID: id, Host: "127.0.0.1", Port: 7022}, 0)
	}
	for _, n := range ring.Next("a", 2) {
		fmt.Println(n.ID)
	}
	// Output:
	// d
	// c
}
