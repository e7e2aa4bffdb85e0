package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/kernel"
)

// CommandHandler runs one request of a command that a package running on
// the node contributes with [Node.HandleCommand] (package conflux's raft
// command, for one). args is the request's payload as the client sent it,
// still encoded: the handler decodes and validates it, within the limits
// of its own protocol. from is the caller (the node ID its hello claimed,
// which any cookie holder can choose, and its address).
//
// The handler runs on the command server's goroutine, one command at a
// time, under a ctx that ends after Config.CommandTimeout: it must return
// by then. Only callers that pass the command server's checks reach it:
// the cookie, and unless Config.AllowMemberCommands, not a ring member.
// A panic is recovered and answered as a FAILED reply.
type CommandHandler func(ctx context.Context, args []byte, from kernel.From) CommandResult

// CommandResult is what a [CommandHandler] returns.
type CommandResult struct {
	// Reply is sent to the caller. An ok:false reply without an Error
	// becomes a FAILED one.
	Reply command.Reply
	// Mutating marks a request that changed, or tried to change, the
	// node or the cluster: like the built-in mutating commands it is
	// logged at Info as "mutating command", with the caller, Attrs and the
	// outcome, whether it succeeded or not. Other requests are logged at
	// Debug when they fail.
	Mutating bool
	// Attrs are extra key-value pairs for that log line (slog's
	// alternating form), such as the request's target. Never secrets.
	Attrs []any
}

// ErrCommandName is wrapped by HandleCommand's error for a name that is
// malformed, taken by a built-in command or already registered.
var ErrCommandName = errors.New("cluster: command name")

// maxCommandName bounds a contributed command's name, in bytes.
const maxCommandName = 64

// HandleCommand makes the command server answer the command name with h,
// beside the built-in commands (command.Names) that name may not shadow.
// name is 1 to 64 bytes of lowercase letters, digits, '.', '_' and '-';
// one handler per name. It may be called before or after Start; the
// returned unregister removes the command (idempotent; a later
// registration of the same name is left alone).
func (n *Node) HandleCommand(name string, h CommandHandler) (unregister func(), err error) {
	return n.cs.handleExt(name, h)
}

// extCommands are the contributed commands by name.
type extCommands struct {
	mu sync.Mutex
	m  map[string]*extEntry
}

type extEntry struct{ h CommandHandler }

func (c *commandServer) handleExt(name string, h CommandHandler) (func(), error) {
	switch {
	case h == nil:
		return nil, fmt.Errorf("%w: %q: nil handler", ErrCommandName, name)
	case !validCommandName(name):
		return nil, fmt.Errorf("%w: %q: want 1-%d bytes of a-z, 0-9, '.', '_', '-'", ErrCommandName, name, maxCommandName)
	case command.Known(name):
		return nil, fmt.Errorf("%w: %q is a built-in command", ErrCommandName, name)
	}
	c.ext.mu.Lock()
	defer c.ext.mu.Unlock()
	if _, taken := c.ext.m[name]; taken {
		return nil, fmt.Errorf("%w: %q is already registered", ErrCommandName, name)
	}
	if c.ext.m == nil {
		c.ext.m = map[string]*extEntry{}
	}
	e := &extEntry{h: h}
	c.ext.m[name] = e
	c.srv.Handle(name, c.wrapExt(name, h))
	var once sync.Once
	return func() {
		once.Do(func() {
			c.ext.mu.Lock()
			defer c.ext.mu.Unlock()
			if c.ext.m[name] == e {
				delete(c.ext.m, name)
				c.srv.Handle(name, nil)
			}
		})
	}, nil
}

func validCommandName(name string) bool {
	if name == "" || len(name) > maxCommandName {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

// wrapExt is wrap for a contributed command: the same member rule and
// timeout, the handler's own decoding, and logging as the handler says.
func (c *commandServer) wrapExt(name string, h CommandHandler) genserver.HandlerFunc {
	return func(ctx context.Context, r genserver.Request) ([]byte, error) {
		var res CommandResult
		if rep, refused := c.refuseMember(r.From.Node.ID); refused {
			// Whether the request would have mutated is the handler's to
			// say, and it does not run: log every refusal at Info.
			res = CommandResult{Reply: rep, Mutating: true}
		} else {
			ctx, cancel := context.WithTimeout(ctx, c.timeout)
			c.log.Debug("command", "command", name, "peer", r.From.Node.ID)
			res = runExt(ctx, h, r)
			cancel()
		}
		if !res.Reply.OK && res.Reply.Error == nil {
			res.Reply = command.Fail(command.CodeFailed, "command failed without a reason")
		}
		if res.Reply.OK && res.Reply.Error != nil {
			res.Reply.Error = nil
		}
		rep := res.Reply
		switch {
		case res.Mutating:
			attrs := append([]any{"command", name, "peer", r.From.Node.ID, "addr", fmt.Sprint(r.From.RemoteAddr())}, res.Attrs...)
			attrs = append(attrs, "ok", rep.OK)
			if !rep.OK {
				attrs = append(attrs, "code", rep.Error.Code, "err", rep.Error.Message)
			}
			c.log.Info("mutating command", attrs...)
		case !rep.OK:
			c.log.Debug("command refused or failed", "command", name, "peer", r.From.Node.ID,
				"code", rep.Error.Code, "err", rep.Error.Message)
		}
		return command.EncodeReply(rep)
	}
}

// runExt calls h, turning a panic into a FAILED reply: a contributed
// handler's bug must not take the command server down.
func runExt(ctx context.Context, h CommandHandler, r genserver.Request) (res CommandResult) {
	defer func() {
		if p := recover(); p != nil {
			res = CommandResult{Reply: command.Fail(command.CodeFailed, fmt.Sprintf("command handler panicked: %v", p)), Mutating: true}
		}
	}()
	return h(ctx, r.Data, r.From)
}
