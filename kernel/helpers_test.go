package kernel

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/testutil"
)

var testSeq atomic.Int64

// testCookie is the test kernels' cookie: long enough for New.
const testCookie = "kernel test cookie 0123456789abcdef"

func testConfig(t testing.TB) Config {
	return Config{
		Node:   notp.Node{ID: fmt.Sprintf("k%d", testSeq.Add(1)), Host: "127.0.0.1"},
		Cookie: testCookie,
		Logger: testutil.Logger(t),
	}
}

// startKernel starts a kernel with cfg adjusted by opt, closed at cleanup.
func startKernel(t testing.TB, opt func(*Config)) *Kernel {
	t.Helper()
	cfg := testConfig(t)
	if opt != nil {
		opt(&cfg)
	}
	k, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := k.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// pair starts two kernels; a links to b (and b to a when both).
func pair(t testing.TB, both bool, opt func(*Config)) (*Kernel, *Kernel) {
	t.Helper()
	a, b := startKernel(t, opt), startKernel(t, opt)
	connect(t, a, b)
	if both {
		connect(t, b, a)
	}
	return a, b
}

func connect(t testing.TB, a, b *Kernel) {
	t.Helper()
	if err := a.Connect(b.Self()); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	waitFor(t, "link up", func() bool { return a.Connected(b.Self().ID) })
}

// waitFor and checkLeaks are the module's shared test helpers under the
// short names this package's tests call them by.
var (
	waitFor    = testutil.WaitFor
	checkLeaks = testutil.CheckLeaks
)

func ctxT(t testing.TB) context.Context { return testutil.Context(t, 10*time.Second) }

// echo registers an echo handler under name.
func echo(t testing.TB, k *Kernel, name string) {
	t.Helper()
	if err := k.Register(name, HandlerFunc(func(m Message) { k.Reply(m.From, m.Data) })); err != nil {
		t.Fatal(err)
	}
}
