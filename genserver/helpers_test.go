package genserver_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/kernel"
)

var kernelSeq atomic.Int64

// newKernel starts a kernel on loopback port 0, closed at cleanup.
func newKernel(t testing.TB) *kernel.Kernel {
	t.Helper()
	id := fmt.Sprintf("n%d", kernelSeq.Add(1))
	k, err := kernel.New(kernel.Config{
		Node:   notp.Node{ID: id, Host: "127.0.0.1", Port: 0},
		Cookie: "genserver test cookie 0123456789",
		Logger: testutil.Logger(t),
	})
	if err != nil {
		t.Fatalf("kernel.New: %v", err)
	}
	if err := k.Start(context.Background()); err != nil {
		t.Fatalf("kernel.Start: %v", err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// newPair starts two kernels connected both ways.
func newPair(t testing.TB) (*kernel.Kernel, *kernel.Kernel) {
	t.Helper()
	k1, k2 := newKernel(t), newKernel(t)
	if err := k1.Connect(k2.Self()); err != nil {
		t.Fatalf("connect: %v", err)
	}
	if err := k2.Connect(k1.Self()); err != nil {
		t.Fatalf("connect: %v", err)
	}
	testutil.WaitFor(t, "connections", func() bool {
		return k1.Connected(k2.Self().ID) && k2.Connected(k1.Self().ID)
	})
	return k1, k2
}

// newServer makes a server (not started) whose logs go to the test.
func newServer(t testing.TB, k *kernel.Kernel, cfg genserver.Config) *genserver.Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger(t)
	}
	s, err := genserver.New(k, cfg)
	if err != nil {
		t.Fatalf("genserver.New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// startServer makes and starts a server.
func startServer(t testing.TB, k *kernel.Kernel, cfg genserver.Config) *genserver.Server {
	t.Helper()
	s := newServer(t, k, cfg)
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

// echo replies with the request data.
func echo(_ context.Context, r genserver.Request) ([]byte, error) { return r.Data, nil }

// wantCode asserts err is a *kernel.RemoteError with the code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var re *kernel.RemoteError
	if !errors.As(err, &re) || re.Code != code {
		t.Fatalf("error = %v, want a RemoteError with code %s", err, code)
	}
	if !errors.Is(err, &kernel.RemoteError{Code: code}) {
		t.Fatalf("errors.Is(%v, code %s) = false", err, code)
	}
}

// ctxT returns a context bounded well below the test timeout.
func ctxT(t testing.TB) context.Context { return testutil.Context(t, 10*time.Second) }

// recv takes one event or fails after 10 s.
func recv(t testing.TB, ch <-chan genserver.Event) genserver.Event {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
		return genserver.Event{}
	}
}
