package genserver

import (
	"context"
	"fmt"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/msgpackcheck"
	"github.com/notp-go/notp/kernel"
	"github.com/vmihailenco/msgpack/v5"
)

// Target names a server: Name on Node. A Node with an empty ID means the
// local kernel, so Target{Name: "counter"} is the local server "counter".
type Target struct {
	Name string
	Node notp.Node
}

func (t Target) node(k *kernel.Kernel) notp.Node {
	if t.Node.ID == "" {
		return k.Self()
	}
	return t.Node
}

// callCtx applies Config.CallTimeout when ctx has no deadline.
func (s *Server) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.cfg.CallTimeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			return context.WithTimeout(ctx, s.cfg.CallTimeout)
		}
	}
	return ctx, func() {}
}

// Call sends event with data to the server t and waits for its reply. An
// error reply arrives as a *kernel.RemoteError (errors.As), with codes such
// as CodeUnknownEvent, CodeOverloaded or kernel.CodeUnknownName; a ctx that
// ends first gives an error wrapping ctx.Err(). Config.CallTimeout applies
// when ctx has no deadline.
func (s *Server) Call(ctx context.Context, t Target, event string, data []byte) ([]byte, error) {
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	return call(ctx, s.k, t, event, data)
}

// CallRaw is the untyped client for programs that are not servers
// themselves (notp-cli, say): it sends event with data to the server t
// through k and returns the raw reply bytes. Errors are as for
// [Server.Call]; only ctx (and the kernel's Config.CallTimeout when ctx has
// no deadline) bounds the wait.
func CallRaw(ctx context.Context, k *kernel.Kernel, t Target, event string, data []byte) ([]byte, error) {
	return call(ctx, k, t, event, data)
}

func call(ctx context.Context, k *kernel.Kernel, t Target, event string, data []byte) ([]byte, error) {
	node := t.node(k)
	reply, err := k.Call(ctx, node, t.Name, encodeRequest(event, data))
	if err != nil {
		return nil, fmt.Errorf("genserver: call %q on %s: %w", t.Name, node.ID, err)
	}
	return reply, nil
}

// Cast sends event with data to the server t without waiting. It reports
// only what the local kernel knows (e.g. kernel.ErrUnknownNode); a cast the
// receiver drops (paused, overloaded, unknown event) is counted there.
func (s *Server) Cast(t Target, event string, data []byte) error {
	return cast(s.k, t, event, data)
}

func cast(k *kernel.Kernel, t Target, event string, data []byte) error {
	node := t.node(k)
	if err := k.Cast(node, t.Name, encodeRequest(event, data)); err != nil {
		return fmt.Errorf("genserver: cast %q on %s: %w", t.Name, node.ID, err)
	}
	return nil
}

// MultiCall calls the server name on every node in parallel and returns the
// results in node order; err is the first per-node error in node order (nil
// if none), so a caller may use it as "any failure fails the call" or read
// the per-node results.
func (s *Server) MultiCall(ctx context.Context, nodes []notp.Node, name, event string, data []byte) ([]kernel.Result, error) {
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	res, err := s.k.MultiCall(ctx, nodes, name, encodeRequest(event, data))
	if err != nil {
		err = fmt.Errorf("genserver: multicall %q: %w", name, err)
	}
	return res, err
}

// Abcast casts event with data to the server name on every node. The error
// joins the per-node send failures.
func (s *Server) Abcast(nodes []notp.Node, name, event string, data []byte) error {
	if err := s.k.Abcast(nodes, name, encodeRequest(event, data)); err != nil {
		return fmt.Errorf("genserver: abcast %q: %w", name, err)
	}
	return nil
}

// Reply answers a call whose handler returned NoReply. It may be called
// from any goroutine, also after the server stopped. It fails with an error
// wrapping kernel.ErrNoReplyTag when from is a cast.
func (s *Server) Reply(from kernel.From, data []byte) error {
	return s.k.Reply(from, data)
}

// ReplyError answers a deferred call with an error (a *kernel.RemoteError
// travels as is, any other error as its message).
func (s *Server) ReplyError(from kernel.From, err error) error {
	return s.k.ReplyError(from, err)
}

// ReplyValue answers a deferred call with the msgpack encoding of v, for
// callers using the typed [Call].
func (s *Server) ReplyValue(from kernel.From, v any) error {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: reply: %w", ErrEncode, err)
	}
	return s.k.Reply(from, b)
}

// Call is the typed client: it msgpack-encodes req, calls event on the
// server t through k and msgpack-decodes the reply into a Resp. It pairs
// with handlers registered by [HandleTyped]. A reply that does not decode
// gives an error wrapping ErrDecode. Only ctx bounds the wait (and the
// kernel's Config.CallTimeout when ctx has no deadline).
func Call[Resp any](ctx context.Context, k *kernel.Kernel, t Target, event string, req any) (Resp, error) {
	var resp Resp
	b, err := msgpack.Marshal(req)
	if err != nil {
		return resp, fmt.Errorf("%w: request for %q: %w", ErrEncode, event, err)
	}
	reply, err := call(ctx, k, t, event, b)
	if err != nil {
		return resp, err
	}
	if err := msgpackcheck.Unmarshal(reply, &resp); err != nil {
		return resp, fmt.Errorf("%w: reply of %q from %q: %w", ErrDecode, event, t.Name, err)
	}
	return resp, nil
}

// Cast is the typed fire-and-forget: it msgpack-encodes req and casts event
// to the server t through k.
func Cast(k *kernel.Kernel, t Target, event string, req any) error {
	b, err := msgpack.Marshal(req)
	if err != nil {
		return fmt.Errorf("%w: request for %q: %w", ErrEncode, event, err)
	}
	return cast(k, t, event, b)
}

// HandleTyped registers fn for event on s, msgpack-decoding the request data
// into a Req (empty data gives the zero Req) and msgpack-encoding the
// returned Resp as the reply. Declared lengths are checked against the
// data's size first (internal/msgpackcheck), so forged data cannot make
// the decoder allocate more than its own size. Data that does not decode is answered with a
// *kernel.RemoteError with CodeBadRequest without calling fn. fn may return
// NoReply and answer later with [Server.ReplyValue].
func HandleTyped[Req, Resp any](s *Server, event string, fn func(ctx context.Context, req Req, from kernel.From) (Resp, error)) {
	s.Handle(event, func(ctx context.Context, r Request) ([]byte, error) {
		var req Req
		if len(r.Data) > 0 {
			if err := msgpackcheck.Unmarshal(r.Data, &req); err != nil {
				s.stats.badRequests.Add(1)
				return nil, &kernel.RemoteError{Code: CodeBadRequest, Message: fmt.Sprintf("event %q: %v", event, err)}
			}
		}
		resp, err := fn(ctx, req, r.From)
		if err != nil {
			return nil, err
		}
		if !r.From.IsCall() {
			return nil, nil
		}
		b, err := msgpack.Marshal(resp)
		if err != nil {
			return nil, fmt.Errorf("%w: reply of %q: %w", ErrEncode, event, err)
		}
		return b, nil
	})
}
