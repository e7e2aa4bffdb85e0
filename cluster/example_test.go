package cluster_test

import (
	"context"
	"fmt"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/genserver"
)

// A node on loopback in a ring of its own, serving an actor of the
// program's; operators drive it with notp-cli (or command.Do, see package
// command).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A real cluster's cookie comes from `notp-cli keygen`.
	n, err := cluster.New(cluster.Config{
		Node:   notp.Node{ID: "a", Host: "127.0.0.1"}, // Port 0: a free port
		Cookie: "example cookie of at least 16 bytes",
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

	echo, err := genserver.New(n.Kernel(), genserver.Config{Name: "echo"})
	if err != nil {
		fmt.Println(err)
		return
	}
	echo.Handle("say", func(_ context.Context, r genserver.Request) ([]byte, error) { return r.Data, nil })
	if err := echo.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer echo.Stop(context.Background())

	owner, _ := n.Ring().View().Owner([]byte("user:42"))
	reply, err := genserver.CallRaw(ctx, n.Kernel(), genserver.Target{Name: "echo", Node: owner}, "say", []byte("hello"))
	fmt.Printf("ring %s, owner of user:42: %s, echo: %s %v\n", n.Ring().RingID(), owner.ID, reply, err)
	// Output:
	// ring demo, owner of user:42: a, echo: hello <nil>
}
