package main

import (
	"context"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"github.com/notp-go/notp/kernel"
)

// rawProto is the protocol byte of the raw raft baseline's streams.
const rawProto byte = 'r'

// kernelLayer is a raft.StreamLayer over kernel authenticated streams.
type kernelLayer struct {
	net.Listener
	k *kernel.Kernel
}

func newKernelLayer(k *kernel.Kernel) (*kernelLayer, error) {
	ln, err := k.ListenAuth(rawProto)
	if err != nil {
		return nil, err
	}
	return &kernelLayer{Listener: ln, k: k}, nil
}

func (l *kernelLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return l.k.DialAuth(ctx, string(addr), rawProto)
}

// Addr is the kernel's advertised address.
func (l *kernelLayer) Addr() net.Addr { return advertised(l.k.Self().Addr()) }

type advertised string

func (a advertised) Network() string { return "tcp" }
func (a advertised) String() string  { return string(a) }
