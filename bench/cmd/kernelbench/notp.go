package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/kernel"
)

// The notp side: the kernel with cookie authentication, and with mutual TLS
// (the shared self-signed certificate) plus the cookie; each with the
// default (adaptive) busy polling, with a fixed 50 µs kernel.Config.BusyPoll
// in both processes, and (plain) with polling off.
func init() {
	for _, v := range []struct {
		name, config string
		opts         notpOpts
	}{
		{"notp", "notp kernel, cookie auth (adaptive polling)", notpOpts{}},
		{"notp-poll", "notp kernel, cookie auth, BusyPoll 50µs", notpOpts{busyPoll: notpBusyPoll}},
		{"notp-off", "notp kernel, cookie auth, polling off", notpOpts{busyPoll: kernel.BusyPollOff}},
		{"notp-tls", "notp kernel, TLS 1.3 + cookie (adaptive)", notpOpts{tls: true}},
		{"notp-tls-poll", "notp kernel, TLS 1.3 + cookie, BusyPoll 50µs", notpOpts{tls: true, busyPoll: notpBusyPoll}},
	} {
		notpSystems[v.name] = v.opts
		registry[v.name] = system{
			config: v.config,
			serve: func(ctx context.Context, sec *secrets) (string, func() error, error) {
				return notpServe(ctx, sec, v.opts)
			},
			dial: func(ctx context.Context, addr string, sec *secrets) (client, error) {
				return notpDial(ctx, addr, sec, v.opts)
			},
		}
	}
}

// notpSystems are the notp systems' options, by name.
var notpSystems = map[string]notpOpts{}

// notpOpts selects a notp configuration.
type notpOpts struct {
	tls      bool
	busyPoll time.Duration
}

// notpBusyPoll is the BusyPoll of the -poll systems.
const notpBusyPoll = 50 * time.Microsecond

const (
	notpServerID = "bench-server"
	notpClientID = "bench-client"
	notpEcho     = "echo"
	notpSink     = "sink"
)

func notpKernel(id string, sec *secrets, o notpOpts) (*kernel.Kernel, error) {
	cfg := kernel.Config{
		Node:     notp.Node{ID: id, Host: "127.0.0.1"},
		Cookie:   sec.cookie,
		BusyPoll: o.busyPoll,
	}
	if o.tls {
		tc, err := sec.tlsConfig()
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
	}
	return kernel.New(cfg)
}

// notpServe starts a kernel with an "echo" handler that replies with the
// request and a "sink" handler that counts casts and answers a call with
// 16 bytes: the count and its wall clock in Unix nanoseconds. It returns
// the kernel's node as "id@host:port".
func notpServe(ctx context.Context, sec *secrets, o notpOpts) (string, func() error, error) {
	k, err := notpKernel(notpServerID, sec, o)
	if err != nil {
		return "", nil, err
	}
	if err := k.Start(ctx); err != nil {
		return "", nil, err
	}
	var count atomic.Int64
	err = errors.Join(
		k.Register(notpEcho, kernel.HandlerFunc(func(m kernel.Message) {
			k.Reply(m.From, m.Data)
		})),
		k.Register(notpSink, kernel.HandlerFunc(func(m kernel.Message) {
			if !m.From.IsCall() {
				count.Add(1)
				return
			}
			var b [16]byte
			binary.BigEndian.PutUint64(b[:8], uint64(count.Load()))
			binary.BigEndian.PutUint64(b[8:], uint64(time.Now().UnixNano()))
			k.Reply(m.From, b[:])
		})),
	)
	if err != nil {
		k.Close()
		return "", nil, err
	}
	return k.Self().String(), k.Close, nil
}

type notpClient struct {
	k   *kernel.Kernel
	srv notp.Node
}

func notpDial(ctx context.Context, addr string, sec *secrets, o notpOpts) (client, error) {
	srv, err := notp.ParseNode(addr)
	if err != nil {
		return nil, err
	}
	k, err := notpKernel(notpClientID, sec, o)
	if err != nil {
		return nil, err
	}
	// ctx bounds only the dial; the kernel lives until Close.
	if err := k.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	if err := k.Connect(srv); err != nil {
		k.Close()
		return nil, err
	}
	// Connect is asynchronous: wait until a ping goes through.
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := k.Ping(pctx, srv)
		cancel()
		if err == nil {
			return &notpClient{k: k, srv: srv}, nil
		}
		select {
		case <-ctx.Done():
			k.Close()
			return nil, fmt.Errorf("ping %s: %w", srv, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (c *notpClient) Call(ctx context.Context, payload []byte) error {
	res, err := c.k.Call(ctx, c.srv, notpEcho, payload)
	if err != nil {
		return err
	}
	if !bytes.Equal(res, payload) {
		return fmt.Errorf("echo returned %d bytes, want the %d sent", len(res), len(payload))
	}
	return nil
}

func (c *notpClient) Cast(payload []byte) error {
	return c.k.Cast(c.srv, notpSink, payload)
}

func (c *notpClient) CastStats(ctx context.Context) (int64, int64, error) {
	res, err := c.k.Call(ctx, c.srv, notpSink, nil)
	if err != nil {
		return 0, 0, err
	}
	if len(res) != 16 {
		return 0, 0, fmt.Errorf("stats reply of %d bytes, want 16", len(res))
	}
	return int64(binary.BigEndian.Uint64(res[:8])), int64(binary.BigEndian.Uint64(res[8:])), nil
}

func (c *notpClient) Close() error {
	return c.k.Close()
}
