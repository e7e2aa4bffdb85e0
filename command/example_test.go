package command_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/kernel"
)

// A Go program drives a node as notp-cli does: a kernel of its own with
// the cluster's cookie, command.Do for each command, and Reply.Decode for
// the typed data or the node's error.
func ExampleDo() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const cookie = "example cookie of at least 16 bytes"
	n, err := cluster.New(cluster.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}, Cookie: cookie})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := n.Start(ctx, "demo"); err != nil {
		fmt.Println(err)
		return
	}
	defer n.Stop(context.Background())

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

	r, err := command.Do(ctx, k, n.Self(), command.Lookup, command.Args{Key: "user:42", N: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	var lk command.LookupData
	if err := r.Decode(&lk); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("owner of", lk.Key+":", lk.Owner.ID)

	r, err = command.Do(ctx, k, n.Self(), command.Get, command.Args{ID: "nobody"})
	if err != nil {
		fmt.Println(err)
		return
	}
	var failed *command.Error
	if err := r.Decode(nil); errors.As(err, &failed) {
		fmt.Println(failed.Code, failed.Message)
	}
	// Output:
	// owner of user:42: a
	// FAILED 'nobody' is not defined in this ring.
}
