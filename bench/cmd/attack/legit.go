package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/kernel"
)

// legitEvery is the period of the legitimate client's calls.
const legitEvery = 50 * time.Millisecond

// legitTimeout bounds one legitimate call: a node that does not answer
// within it counts as failed for that call.
const legitTimeout = 2 * time.Second

// client is a proper cookie holder: a kernel node of its own linked to the
// target, calling the command server as notp-cli does.
type client struct {
	k      *kernel.Kernel
	target notp.Node
}

// newClient starts a kernel named prefix-<pid>-<random> on 127.0.0.1 and
// links it to target.
func newClient(ctx context.Context, prefix, cookie string, target notp.Node) (*client, error) {
	if err := checkLoopback(target.Addr()); err != nil {
		return nil, err
	}
	var r [4]byte
	rand.Read(r[:])
	k, err := kernel.New(kernel.Config{
		Node:             notp.Node{ID: fmt.Sprintf("%s-%d-%s", prefix, os.Getpid(), hex.EncodeToString(r[:])), Host: "127.0.0.1"},
		Cookie:           cookie,
		HandshakeTimeout: legitTimeout,
		CallTimeout:      legitTimeout,
		ReconnectMax:     200 * time.Millisecond,
		Logger:           slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	if err := k.Start(ctx); err != nil {
		k.Close()
		return nil, err
	}
	if err := k.Connect(target); err != nil {
		k.Close()
		return nil, err
	}
	return &client{k: k, target: target}, nil
}

// Close stops the client's kernel.
func (c *client) Close() error { return c.k.Close() }

// command runs one command-server command within legitTimeout and returns
// the node's reply.
func (c *client) command(ctx context.Context, name string, args command.Args) (command.Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, legitTimeout)
	defer cancel()
	payload, err := command.EncodeArgs(args)
	if err != nil {
		return command.Reply{}, err
	}
	raw, err := genserver.CallRaw(ctx, c.k, genserver.Target{Name: command.ServerName, Node: c.target}, name, payload)
	if err != nil {
		return command.Reply{}, err
	}
	return command.DecodeReply(raw)
}

// ping runs the command server's ping and checks the answer.
func (c *client) ping(ctx context.Context) error {
	r, err := c.command(ctx, command.Ping, command.Args{})
	if err != nil {
		return err
	}
	if !r.OK {
		return fmt.Errorf("attack: ping refused: %s", r.Error.Message)
	}
	return nil
}

// waitReady pings until the node answers or within passes; it also fails
// as soon as the node process exits.
func (c *client) waitReady(ctx context.Context, p *nodeProc, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var err error
	for {
		if err = c.ping(ctx); err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("attack: node exited before answering (%v): %s", p.err, p.lastLogLine("level="))
		case <-ctx.Done():
			return fmt.Errorf("attack: node not answering after %v: %w", within, err)
		case <-time.After(legitEvery):
		}
	}
}

// legitStats sums up the legitimate calls made during an attack.
type legitStats struct {
	ok, failed int
	maxLatency time.Duration
	firstErr   error
}

// run pings at once and then every legitEvery until ctx ends. A call that outlives a tick
// delays the next one (ticks are dropped, not queued).
func (c *client) run(ctx context.Context) legitStats {
	var s legitStats
	t := time.NewTicker(legitEvery)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return s
			case <-t.C:
			}
		}
		start := time.Now()
		err := c.ping(ctx)
		if ctx.Err() != nil {
			return s // cut by the end of the attack, not by the node
		}
		s.maxLatency = max(s.maxLatency, time.Since(start))
		if err != nil {
			s.failed++
			if s.firstErr == nil {
				s.firstErr = err
			}
		} else {
			s.ok++
		}
	}
}
