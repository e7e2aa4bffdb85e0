package dlm_test

import (
	"context"
	"fmt"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/dlm"
)

// A one-node cluster takes a write lock twice: each grant has a larger
// fencing token than the one before.
func Example() {
	ctx := context.Background()
	n, err := cluster.New(cluster.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}, Insecure: true})
	if err != nil {
		panic(err)
	}
	if err := n.Start(ctx, "ring"); err != nil {
		panic(err)
	}
	defer n.Stop(ctx)
	d, err := dlm.New(n, dlm.Config{})
	if err != nil {
		panic(err)
	}
	if err := d.Start(ctx); err != nil {
		panic(err)
	}
	defer d.Stop(ctx)

	var last uint64
	for range 2 {
		l, err := d.WLock(ctx, "nightly-report", "worker-7", 10*time.Second)
		if err != nil {
			panic(err)
		}
		// Pass l.Token to the storage the job writes: it refuses tokens
		// not larger than the last it accepted.
		fmt.Println("token larger than the last:", l.Token > last, "from", len(l.Nodes), "replica")
		last = l.Token
		if err := d.WUnlock(ctx, "nightly-report", "worker-7"); err != nil {
			panic(err)
		}
	}
	// Output:
	// token larger than the last: true from 1 replica
	// token larger than the last: true from 1 replica
}
