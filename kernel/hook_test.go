package kernel_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/kernel"
)

// Config.Listen and Config.Dial replace the kernel's sockets: Start binds
// through Listen, and links and Kernel.Dial connect through Dial, so a
// test network sees every connection.
func TestConfigListenAndDialHooks(t *testing.T) {
	var listens, dials atomic.Int32
	var lastDial atomic.Value
	cfg := func(id string) kernel.Config {
		return kernel.Config{
			Node:   notp.Node{ID: id, Host: "127.0.0.1"},
			Cookie: "hook-test-cookie-0123456789abcdef",
			Listen: func(ctx context.Context, network, addr string) (net.Listener, error) {
				listens.Add(1)
				return new(net.ListenConfig).Listen(ctx, network, addr)
			},
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				lastDial.Store(network + " " + addr)
				return new(net.Dialer).DialContext(ctx, network, addr)
			},
		}
	}
	a, b := clustertest.StartKernel(t, cfg("a")), clustertest.StartKernel(t, cfg("b"))
	if got := listens.Load(); got != 2 {
		t.Fatalf("Listen called %d times for two kernels, want 2", got)
	}
	if err := a.Connect(b.Self()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "a connected to b", func() bool { return a.Connected("b") })
	if got, want := lastDial.Load(), "tcp "+b.Self().Addr(); got != want {
		t.Fatalf("link dialed %v, want %q", got, want)
	}
	before := dials.Load()
	c, err := a.Dial(context.Background(), b.Self().Addr(), 'Z')
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if dials.Load() != before+1 {
		t.Fatal("Kernel.Dial did not go through Config.Dial")
	}
}
