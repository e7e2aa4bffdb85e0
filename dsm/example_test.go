package dsm_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/dsm"
)

// A semaphore of two places on a one-node cluster: a third holder is
// refused until a place is given back.
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
	s, err := dsm.New(n, dsm.Config{Retries: dsm.NoRetries})
	if err != nil {
		panic(err)
	}
	if err := s.Start(ctx); err != nil {
		panic(err)
	}
	defer s.Stop(ctx)

	_ = s.Create(ctx, "exports", 2)
	_ = s.Post(ctx, "exports", "job-1", time.Minute)
	_ = s.Post(ctx, "exports", "job-2", time.Minute)
	err = s.Post(ctx, "exports", "job-3", time.Minute)
	fmt.Println("job-3 refused:", errors.Is(err, dsm.ErrRetriesExhausted))
	_ = s.Close(ctx, "exports", "job-1")
	info, _ := s.Read(ctx, "exports")
	fmt.Printf("n=%d active=%d\n", info.N, info.Active)
	// Output:
	// job-3 refused: true
	// n=2 active=1
}
