package conflux_test

import (
	"context"
	"fmt"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/conflux"
	"github.com/vmihailenco/msgpack/v5"
)

// A one-node group (BootstrapExpect 1) of a counter: Perform runs the
// method on the leader and returns once the action is applied, so State
// shows it at once.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	node, err := cluster.New(cluster.Config{
		Node:   notp.Node{ID: "a", Host: "127.0.0.1"},
		Cookie: "example cookie of at least 16 bytes",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := node.Start(ctx, "demo"); err != nil {
		fmt.Println(err)
		return
	}
	defer node.Stop(context.Background())

	s, err := conflux.New(node, conflux.Config[int, int]{
		Name:   "counter",
		Reduce: func(n, d int) int { return n + d },
		Methods: map[string]conflux.Method[int, int]{
			"add": func(_ int, args []byte) (int, error) {
				var d int
				err := msgpack.Unmarshal(args, &d)
				return d, err
			},
		},
		BootstrapExpect:  1,
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := s.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer s.Stop(context.Background())

	for _, d := range []int{2, 3} {
		if _, err := s.Perform(ctx, "add", d); err != nil {
			fmt.Println(err)
			return
		}
	}
	n, err := s.Read(ctx, conflux.Linearizable)
	fmt.Println("state:", s.State(), "read:", n, err)
	// Output:
	// state: 5 read: 5 <nil>
}
