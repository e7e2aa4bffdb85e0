package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cmd/notp-cli/internal/cmdline"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/kernel"
)

// Codes of the ok:false replies the CLI makes up itself, when no reply
// arrives. Codes from the node (command.Code*, kernel and genserver codes)
// are printed as they come.
const (
	codeTimeout      = "TIMEOUT"          // no reply (or no connection) within --timeout
	codeUnreachable  = "UNREACHABLE"      // the TCP connection to the node failed
	codeHandshake    = "HANDSHAKE_FAILED" // connected, but the kernel hello failed (key or id)
	codeDisconnected = "DISCONNECTED"     // the connection dropped while waiting for a reply
	codeInvalidReply = "INVALID_REPLY"    // the reply does not decode as a command.Reply
	codeCanceled     = "CANCELED"         // interrupted (signal)
	codeClient       = "CLIENT_ERROR"     // the CLI's own kernel failed
)

// client is the CLI's kernel node and its link to the target node.
type client struct {
	k       *kernel.Kernel
	target  notp.Node
	timeout time.Duration
}

// newClient starts the CLI's own kernel node "notp-cli-<pid>-<random>" on
// 127.0.0.1 (an ephemeral port; replies come back over the connection the
// request went out on) and starts the link to the target.
func newClient(ctx context.Context, o cmdline.Flags) (*client, error) {
	var r [4]byte
	rand.Read(r[:])
	id := fmt.Sprintf("notp-cli-%d-%s", os.Getpid(), hex.EncodeToString(r[:]))
	k, err := kernel.New(kernel.Config{
		Node:     notp.Node{ID: id, Host: "127.0.0.1", Port: 0},
		Cookie:   o.Key,
		Insecure: o.Key == "",
		TLS:      o.TLS,
		// Longer than a request's timeout, so a silent peer shows up as
		// a timeout, not as a half-finished handshake.
		HandshakeTimeout: 2 * o.Timeout,
		CallTimeout:      o.Timeout,
		ReconnectMax:     time.Second,
		Logger:           slog.New(slog.DiscardHandler),
		// The node enforces its cookie policy; the CLI presents whatever
		// cookie the cluster uses, short demo cookies included.
		AllowWeakCookie: true,
	})
	if err != nil {
		return nil, err
	}
	if err := k.Start(ctx); err != nil {
		k.Close()
		return nil, err
	}
	if err := k.Connect(o.Target); err != nil {
		k.Close()
		return nil, err
	}
	return &client{k: k, target: o.Target, timeout: o.Timeout}, nil
}

// Close stops the kernel and waits for its goroutines.
func (c *client) Close() error { return c.k.Close() }

// connected reports whether the link to the target is up.
func (c *client) connected() bool { return c.k.Connected(c.target.ID) }

// failure is an ok:false reply made up by the CLI.
func failure(code, format string, args ...any) command.Reply {
	return command.Fail(code, fmt.Sprintf(format, args...))
}

// waitConnected waits until the link to the target is up. It fails at the
// first connection error after it was called (so a refused connection or a
// wrong key is reported at once, not after the timeout) or when ctx ends.
func (c *client) waitConnected(ctx context.Context) (command.Reply, bool) {
	err := c.k.WaitConnected(ctx, c.target.ID)
	var le *kernel.LinkError
	switch {
	case err == nil:
		return command.Reply{}, true
	case errors.As(err, &le):
		return c.linkFailure(le.Err), false
	case ctx.Err() != nil:
		return c.ctxFailure(ctx, "connecting to"), false
	}
	return failure(codeClient, "%v", err), false
}

// linkFailure describes a failed connection attempt.
func (c *client) linkFailure(err error) command.Reply {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return failure(codeUnreachable, "cannot connect to node %q at %s: %v", c.target.ID, c.target.Addr(), err)
	}
	return failure(codeHandshake, "node at %s refused the connection: %v (check -a/--key, -I/--instance and whether the node runs TLS: --tls-*)",
		c.target.Addr(), err)
}

// ctxFailure describes a request whose ctx ended.
func (c *client) ctxFailure(ctx context.Context, what string) command.Reply {
	if errors.Is(ctx.Err(), context.Canceled) {
		return failure(codeCanceled, "interrupted while %s node %q at %s", what, c.target.ID, c.target.Addr())
	}
	return failure(codeTimeout, "timed out after %v %s node %q at %s", c.timeout, what, c.target.ID, c.target.Addr())
}

// do runs one command within --timeout, connection included, and always
// returns a reply: the node's, or an ok:false one saying what went wrong.
func (c *client) do(ctx context.Context, name string, args command.Args) command.Reply {
	payload, err := command.EncodeArgs(args)
	if err != nil {
		return failure(codeClient, "encode the %s request: %v", name, err)
	}
	return c.doRaw(ctx, name, payload)
}

// send runs a parsed request: its payload when it has one, else its args.
func (c *client) send(ctx context.Context, req cmdline.Request) command.Reply {
	if req.Payload != nil {
		return c.doRaw(ctx, req.Name, req.Payload)
	}
	return c.do(ctx, req.Name, req.Args)
}

// doRaw is do with the payload already encoded.
func (c *client) doRaw(ctx context.Context, name string, payload []byte) command.Reply {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if r, ok := c.waitConnected(ctx); !ok {
		return r
	}
	// The reply comes back over the connection the request went out on:
	// if that drops, the kernel fails the call at once (ErrConnectionLost).
	r, err := command.DoRaw(ctx, c.k, c.target, name, payload)
	switch {
	case errors.Is(err, command.ErrInvalidReply):
		return failure(codeInvalidReply, "node %q sent a malformed reply: %v", c.target.ID, err)
	case err != nil:
		return c.callFailure(ctx, err)
	}
	return r
}

// callFailure turns a failed call into an ok:false reply.
func (c *client) callFailure(ctx context.Context, err error) command.Reply {
	var re *kernel.RemoteError
	var le *kernel.LinkError
	switch {
	case errors.Is(err, kernel.ErrConnectionLost):
		return failure(codeDisconnected, "disconnected from %s before the reply arrived", c.target.ID)
	case errors.Is(err, kernel.ErrNodeDown) && errors.As(err, &le):
		return c.linkFailure(le.Err)
	case errors.As(err, &re):
		msg := re.Message
		if re.Code == kernel.CodeUnknownName {
			msg = fmt.Sprintf("node %q runs no command server: %s", c.target.ID, re.Message)
		}
		return command.Reply{Error: &command.Error{Code: re.Code, Message: msg, Fields: re.Fields}}
	case ctx.Err() != nil:
		return c.ctxFailure(ctx, "waiting for the reply of")
	default:
		return failure(codeClient, "%v", err)
	}
}
