package gossip_test

import (
	"context"
	"fmt"

	"github.com/hashicorp/memberlist"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/kernel"
)

// Two nodes form a ring: b meets a, and once Meet returns a has merged
// b's ring into its own. Members are listed in ring order.
func Example() {
	ctx := context.Background()
	start := func(id string) (*kernel.Kernel, *gossip.Ring) {
		k, err := kernel.New(kernel.Config{Node: notp.Node{ID: id, Host: "127.0.0.1"}, Cookie: "example cluster cookie, 16+ bytes"})
		if err != nil {
			panic(err)
		}
		if err := k.Start(ctx); err != nil {
			panic(err)
		}
		r, err := gossip.New(k, gossip.Config{Memberlist: memberlist.DefaultLocalConfig()})
		if err != nil {
			panic(err)
		}
		if err := r.Start(ctx, "demo"); err != nil {
			panic(err)
		}
		return k, r
	}
	ka, a := start("a")
	kb, b := start("b")
	defer func() {
		_ = b.Stop(ctx)
		_ = a.Stop(ctx)
		_ = kb.Close()
		_ = ka.Close()
	}()

	if err := b.Meet(ctx, ka.Self()); err != nil {
		panic(err)
	}
	for _, m := range a.Members() {
		fmt.Println(m.Node.ID, m.Weight)
	}
	fmt.Println("ring:", a.RingID(), "owner of user:42:", a.PreferenceList([]byte("user:42"), 1)[0].ID)
	// Output:
	// b 128
	// a 128
	// ring: demo owner of user:42: b
}
