// Command shard shows chash on its own: it spreads keys over a weighted
// consistent hash ring, prints how many keys each server owns and the
// preference list (owner first, then replicas) for a few keys, then adds a
// server and reports how few keys move.
//
//	go run ./examples/shard
//	go run ./examples/shard -servers 16 -keys 1000000 -vnodes 64
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/chash"
)

func main() {
	servers := flag.Int("servers", 5, "number of servers in the ring (1..10000)")
	keys := flag.Int("keys", 200000, "number of keys to place (1..100000000)")
	vnodes := flag.Int("vnodes", 64, "virtual nodes per server of weight 1 (1..4096)")
	replicas := flag.Int("replicas", 3, "preference list length shown per key (1..servers)")
	flag.Parse()
	if err := run(*servers, *keys, *vnodes, *replicas); err != nil {
		fmt.Fprintln(os.Stderr, "shard:", err)
		os.Exit(2)
	}
}

func run(servers, keys, vnodes, replicas int) error {
	switch {
	case servers < 1 || servers > 10000:
		return fmt.Errorf("-servers %d: want 1..10000", servers)
	case keys < 1 || keys > 100_000_000:
		return fmt.Errorf("-keys %d: want 1..100000000", keys)
	case vnodes < 1 || vnodes > 4096:
		return fmt.Errorf("-vnodes %d: want 1..4096", vnodes)
	case replicas < 1 || replicas > servers:
		return fmt.Errorf("-replicas %d: want 1..%d", replicas, servers)
	}

	ring := chash.New(vnodes, replicas-1)
	for i := range servers {
		ring.Insert(server(i), 0) // weight 0: the ring's rfactor (vnodes)
	}

	before := place(ring, keys)
	fmt.Printf("%d keys over %d servers (%d tokens):\n", keys, ring.NumberNodes(), ring.Size())
	printLoad(before, keys)

	fmt.Println("\npreference lists (owner first):")
	var buf []notp.Node
	for _, k := range []string{"user:42", "user:43", "cart:7", "session:abc"} {
		buf = ring.AppendRangeNext(buf[:0], []byte(k), replicas)
		ids := make([]string, len(buf))
		for i, n := range buf {
			ids[i] = n.ID
		}
		fmt.Printf("  %-12s -> %v\n", k, ids)
	}

	added := server(servers)
	ring.Insert(added, 0)
	after := place(ring, keys)
	moved, toNew := 0, 0
	for i := range keys {
		if before.owner[i] != after.owner[i] {
			moved++
			if after.owner[i] == added.ID {
				toNew++
			}
		}
	}
	fmt.Printf("\nadding %s moved %d of %d keys (%.2f%%; ideal %.2f%%), %d of them to the new server\n",
		added.ID, moved, keys, 100*float64(moved)/float64(keys), 100/float64(servers+1), toNew)
	return nil
}

func server(i int) notp.Node {
	return notp.Node{ID: "server-" + strconv.Itoa(i), Host: "10.0.0." + strconv.Itoa(i%250+1), Port: 7022}
}

type placement struct {
	owner []string
	count map[string]int
}

func place(ring *chash.Ring, keys int) placement {
	p := placement{owner: make([]string, keys), count: map[string]int{}}
	key := make([]byte, 0, 32)
	for i := range keys {
		key = strconv.AppendInt(append(key[:0], "key-"...), int64(i), 10)
		n, _ := ring.Owner(key)
		p.owner[i] = n.ID
		p.count[n.ID]++
	}
	return p
}

func printLoad(p placement, keys int) {
	ids := make([]string, 0, len(p.count))
	for id := range p.count {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		fmt.Printf("  %-10s %8d keys (%5.2f%%)\n", id, p.count[id], 100*float64(p.count[id])/float64(keys))
	}
}
