package command_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/kernel"
)

const clientCookie = "command client test cookie"

// startKernel starts kernel id on loopback with the tests' cookie, closed
// at cleanup.
func startKernel(t *testing.T, id string) *kernel.Kernel {
	t.Helper()
	return clustertest.StartKernel(t, kernel.Config{Node: notp.Node{ID: id, Host: "127.0.0.1"}, Cookie: clientCookie,
		CallTimeout: 5 * time.Second})
}

// Do returns the node's reply (ok or not) with a nil error, wraps
// ErrInvalidReply around a reply that does not decode, and keeps the
// kernel's error reachable when nothing answers.
func TestDo(t *testing.T) {
	srvK := startKernel(t, "node")
	srv, err := genserver.New(srvK, genserver.Config{Name: command.ServerName})
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle(command.Ping, func(context.Context, genserver.Request) ([]byte, error) {
		r, _ := command.OK("pong")
		return command.EncodeReply(r)
	})
	srv.Handle(command.Get, func(context.Context, genserver.Request) ([]byte, error) {
		return command.EncodeReply(command.Fail(command.CodeFailed, "no such node"))
	})
	srv.Handle(command.Info, func(context.Context, genserver.Request) ([]byte, error) {
		return []byte{0xc1}, nil // never valid msgpack
	})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	k := startKernel(t, "admin")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	r, err := command.Do(ctx, k, srvK.Self(), command.Ping, command.Args{})
	var pong string
	if err != nil || r.Decode(&pong) != nil || pong != "pong" {
		t.Fatalf("ping: %+v, %v (data %q)", r, err, pong)
	}
	r, err = command.Do(ctx, k, srvK.Self(), command.Get, command.Args{ID: "x"})
	var ce *command.Error
	if err != nil || r.OK || !errors.As(r.Decode(nil), &ce) || ce.Code != command.CodeFailed {
		t.Fatalf("get: %+v, %v", r, err)
	}
	if _, err := command.Do(ctx, k, srvK.Self(), command.Info, command.Args{}); !errors.Is(err, command.ErrInvalidReply) {
		t.Fatalf("malformed reply: %v, want ErrInvalidReply", err)
	}
	var bad []int
	if r, _ := command.OK(map[string]int{"a": 1}); !errors.Is(r.Decode(&bad), command.ErrInvalidReply) {
		t.Fatal("data of the wrong shape decoded")
	}
	_ = srv.Close()
	_, err = command.Do(ctx, k, srvK.Self(), command.Ping, command.Args{})
	var re *kernel.RemoteError
	if !errors.As(err, &re) || re.Code != kernel.CodeUnknownName {
		t.Fatalf("no command server: %v, want a RemoteError %s", err, kernel.CodeUnknownName)
	}
	_ = srvK.Close()
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancelShort()
	if _, err := command.Do(short, k, srvK.Self(), command.Ping, command.Args{}); err == nil {
		t.Fatal("a call to a closed node succeeded")
	}
}
