package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/kernel"
)

// ErrInvalidReply is wrapped by Do's error when the node's reply does not
// decode as a well-formed Reply, and by Reply.Decode's when its data does
// not decode into the caller's value.
var ErrInvalidReply = errors.New("command: invalid reply")

// Do runs the command name with args on node through k, which must be
// started: it connects k to node (a no-op when connected), calls the
// node's command server and returns its reply. The error is non-nil only
// when no well-formed reply arrived: the call's own error wrapped (kernel
// sentinels such as kernel.ErrNodeDown and kernel.ErrConnectionLost, and a
// *kernel.RemoteError, stay reachable with errors.Is and errors.As), or
// ErrInvalidReply. A command the node refused or that failed is a nil
// error with Reply.OK false; [Reply.Decode] turns it into an error.
//
// ctx bounds the wait (k's Config.CallTimeout when ctx has no deadline).
// The node accepts a command only from a kernel holding the cluster's
// cookie and, unless it allows member commands, only from a non-member.
func Do(ctx context.Context, k *kernel.Kernel, node notp.Node, name string, args Args) (Reply, error) {
	payload, err := EncodeArgs(args)
	if err != nil {
		return Reply{}, fmt.Errorf("command: %s: encode args: %w", name, err)
	}
	return DoRaw(ctx, k, node, name, payload)
}

// DoRaw is Do with the payload already encoded: for commands whose
// payload is not an Args, such as Raft (EncodeRaftArgs).
func DoRaw(ctx context.Context, k *kernel.Kernel, node notp.Node, name string, payload []byte) (Reply, error) {
	if err := k.Connect(node); err != nil {
		return Reply{}, fmt.Errorf("command: %s on %s: %w", name, node.ID, err)
	}
	raw, err := genserver.CallRaw(ctx, k, genserver.Target{Name: ServerName, Node: node}, name, payload)
	if err != nil {
		return Reply{}, fmt.Errorf("command: %s on %s: %w", name, node.ID, err)
	}
	r, err := DecodeReply(raw)
	if err != nil {
		return Reply{}, fmt.Errorf("%w: %s on %s: %w", ErrInvalidReply, name, node.ID, err)
	}
	return r, nil
}

// Decode stores the reply's data in v (a pointer to the command's data
// type: [InspectData], []NodeHealth, [LookupData] …) and returns nil, or
// returns the reply's *Error when it is not OK. v nil or a reply without
// data leaves v alone. Data that does not fit v wraps ErrInvalidReply.
func (r Reply) Decode(v any) error {
	if !r.OK {
		if r.Error == nil {
			return fmt.Errorf("%w: failed reply without an error", ErrInvalidReply)
		}
		return r.Error
	}
	if v == nil || len(r.Data) == 0 {
		return nil
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		return fmt.Errorf("%w: data: %w", ErrInvalidReply, err)
	}
	return nil
}

// Error returns "command: <code>: <message>" (without the code when there
// is none), so a failed reply can travel as an error; errors.As recovers
// the *Error with its Code and Fields.
func (e *Error) Error() string {
	if e.Code == "" {
		return "command: " + e.Message
	}
	return "command: " + e.Code + ": " + e.Message
}
