package cluster_test

import (
	"context"
	"fmt"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/kernel"
)

// A node on loopback, driven by an operator's client the way notp-cli
// drives it: a kernel that is not a ring member calls the node's command
// server.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A real cluster's cookie comes from `notp-cli keygen`.
	const cookie = "example cookie of at least 16 bytes"
	n, err := cluster.New(cluster.Config{
		Node:   notp.Node{ID: "a", Host: "127.0.0.1"}, // Port 0: a free port
		Cookie: cookie,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := n.Start(ctx, "demo"); err != nil {
		fmt.Println(err)
		return
	}
	defer n.Stop(context.Background())
	fmt.Println("ring:", n.Ring().RingID(), "owner of user:42:", n.Ring().PreferenceList([]byte("user:42"), 1)[0].ID)

	// The operator's side.
	k, err := kernel.New(kernel.Config{Node: notp.Node{ID: "admin", Host: "127.0.0.1"}, Cookie: cookie})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := k.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer k.Close()
	for _, cmd := range []string{command.Ping, command.Weights} {
		r, err := command.Do(ctx, k, n.Self(), cmd, command.Args{})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s: ok=%v data=%s\n", cmd, r.OK, r.Data)
	}
	// Output:
	// ring: demo owner of user:42: a
	// ping: ok=true data="pong"
	// weights: ok=true data={"a":128}
}
