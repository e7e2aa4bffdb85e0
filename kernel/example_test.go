package kernel_test

import (
	"context"
	"fmt"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/kernel"
)

// Two kernels on loopback: b registers an echo handler, a calls it.
func Example() {
	start := func(id string) *kernel.Kernel {
		k, err := kernel.New(kernel.Config{Node: notp.Node{ID: id, Host: "127.0.0.1"}, Cookie: "example cookie of 16+ bytes"})
		if err != nil {
			panic(err)
		}
		if err := k.Start(context.Background()); err != nil {
			panic(err)
		}
		return k
	}
	a, b := start("a"), start("b")
	defer a.Close()
	defer b.Close()
	b.Register("echo", kernel.HandlerFunc(func(m kernel.Message) {
		b.Reply(m.From, append([]byte("echo: "), m.Data...))
	}))
	a.Connect(b.Self())
	reply, err := a.Call(context.Background(), b.Self(), "echo", []byte("hello"))
	fmt.Println(string(reply), err)
	// Output: echo: hello <nil>
}
