package genserver_test

import (
	"context"
	"testing"

	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/kernel"
)

// BenchmarkCallLocal: a Call round trip to an actor on the same kernel.
func BenchmarkCallLocal(b *testing.B) {
	k := newKernel(b)
	s := startServer(b, k, genserver.Config{Name: "echo"})
	s.Handle("echo", echo)
	benchCall(b, s, genserver.Target{Name: "echo"})
}

// BenchmarkCallRemote: a Call round trip to an actor on another kernel
// over loopback TCP (cookie authentication on).
func BenchmarkCallRemote(b *testing.B) {
	k1, k2 := newPair(b)
	s := startServer(b, k2, genserver.Config{Name: "echo"})
	s.Handle("echo", echo)
	benchCall(b, newServer(b, k1, genserver.Config{}), genserver.Target{Name: "echo", Node: k2.Self()})
}

// BenchmarkCallRemoteParallel: concurrent callers to one remote actor.
func BenchmarkCallRemoteParallel(b *testing.B) {
	k1, k2 := newPair(b)
	s := startServer(b, k2, genserver.Config{Name: "echo"})
	s.Handle("echo", echo)
	client := newServer(b, k1, genserver.Config{})
	target := genserver.Target{Name: "echo", Node: k2.Self()}
	data := make([]byte, 32)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.Call(ctx, target, "echo", data); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCallTypedRemote: the msgpack-typed helper over loopback.
func BenchmarkCallTypedRemote(b *testing.B) {
	k1, k2 := newPair(b)
	s := startServer(b, k2, genserver.Config{Name: "double"})
	genserver.HandleTyped(s, "double", func(_ context.Context, n int, _ kernel.From) (int, error) { return 2 * n, nil })
	target := genserver.Target{Name: "double", Node: k2.Self()}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := genserver.Call[int](ctx, k1, target, "double", 21); err != nil {
			b.Fatal(err)
		}
	}
}

func benchCall(b *testing.B, s *genserver.Server, target genserver.Target) {
	data := make([]byte, 32)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Call(ctx, target, "echo", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKernelCallRemoteBaseline: the same round trip with a bare kernel
// handler replying from the connection reader, to show what the actor layer
// (envelope, mailbox, goroutine hand-off) adds to BenchmarkCallRemote.
func BenchmarkKernelCallRemoteBaseline(b *testing.B) {
	k1, k2 := newPair(b)
	if err := k2.Register("raw", kernel.HandlerFunc(func(m kernel.Message) { _ = k2.Reply(m.From, m.Data) })); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 32)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k1.Call(ctx, k2.Self(), "raw", data); err != nil {
			b.Fatal(err)
		}
	}
}
