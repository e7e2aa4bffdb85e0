package testutil

import (
	"context"
	"net"
	"sync"
)

// IdleListen is a kernel.Config.Listen that opens no socket: its listener
// never accepts, and its Accept returns net.ErrClosed once it is closed.
// A kernel for local work inside a testing/synctest bubble needs it, since
// a real socket's Accept is not a durable block and would keep the
// bubble's clock from moving.
func IdleListen(context.Context, string, string) (net.Listener, error) {
	return &idleListener{done: make(chan struct{})}, nil
}

type idleListener struct {
	once sync.Once
	done chan struct{}
}

func (l *idleListener) Accept() (net.Conn, error) {
	<-l.done
	return nil, net.ErrClosed
}

func (l *idleListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *idleListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
