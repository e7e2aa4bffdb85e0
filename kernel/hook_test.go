package kernel_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/notp-go/notp"
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
	a, b := startKernel(t, cfg("a")), startKernel(t, cfg("b"))
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

// startKernel builds and starts a kernel from cfg, closed at t's cleanup.
// (clustertest.StartKernel does the same, but linking clustertest would
// link the cluster, memberlist and Prometheus into the kernel's test
// binary, whose fuzz targets then run several times slower: the fuzz
// worker scans the coverage counters of everything linked on every
// execution.)
func startKernel(t *testing.T, cfg kernel.Config) *kernel.Kernel {
	t.Helper()
	cfg.Logger = testutil.Logger(t)
	k, err := kernel.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return k
}
