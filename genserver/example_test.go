package genserver_test

import (
	"context"
	"fmt"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/kernel"
)

// A counter actor on one kernel, called from another kernel in the same
// process over loopback.
func Example() {
	ctx := context.Background()
	start := func(id string) *kernel.Kernel {
		k, err := kernel.New(kernel.Config{
			Node:   notp.Node{ID: id, Host: "127.0.0.1", Port: 0},
			Cookie: "example cookie of 16+ bytes",
		})
		if err != nil {
			panic(err)
		}
		if err := k.Start(ctx); err != nil {
			panic(err)
		}
		return k
	}
	a, b := start("a"), start("b")
	defer a.Close()
	defer b.Close()

	// The counter lives on b. Only its actor goroutine touches n.
	counter, err := genserver.New(b, genserver.Config{Name: "counter"})
	if err != nil {
		panic(err)
	}
	n := 0
	genserver.HandleTyped(counter, "add", func(_ context.Context, by int, _ kernel.From) (int, error) {
		n += by
		return n, nil
	})
	if err := counter.Start(ctx); err != nil {
		panic(err)
	}
	defer counter.Stop(ctx)

	// a calls it.
	if err := a.Connect(b.Self()); err != nil {
		panic(err)
	}
	for !a.Connected("b") {
		time.Sleep(time.Millisecond)
	}
	target := genserver.Target{Name: "counter", Node: b.Self()}
	for _, by := range []int{1, 2, 3} {
		total, err := genserver.Call[int](ctx, a, target, "add", by)
		if err != nil {
			panic(err)
		}
		fmt.Println("total:", total)
	}
	_, err = genserver.Call[int](ctx, a, target, "reset", nil)
	fmt.Println(err)
	// Output:
	// total: 1
	// total: 3
	// total: 6
	// genserver: call "counter" on b: remote b: UNKNOWN_EVENT: server counter has no handler for event "reset"
}
