package command

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/msgpackcheck"
)

// ServerName is the actor name of the command server on every node.
const ServerName = "command"

// The commands, by event name.
const (
	Join      = "join"      // Args.ID: join the ring with this id
	Leave     = "leave"     // Args.Force
	Meet      = "meet"      // Args.Node
	Insert    = "insert"    // Args.Node, Args.Weight, Args.Force
	MInsert   = "minsert"   // Args.Nodes, Args.Weight, Args.Force
	Update    = "update"    // Args.Node, Args.Weight, Args.Force
	Remove    = "remove"    // Args.Node, Args.Force
	MRemove   = "mremove"   // Args.Nodes, Args.Force
	Inspect   = "inspect"   // the ring
	Nodes     = "nodes"     // the ring's nodes with their health
	Has       = "has"       // Args.ID
	Get       = "get"       // Args.ID
	Weight    = "weight"    // Args.ID
	Weights   = "weights"   // every node's weight
	Ping      = "ping"      // "pong"
	Ownership = "ownership" // each node's share of the key space
	Lookup    = "lookup"    // Args.Key, Args.N: the key's owner and preference list
	Info      = "info"      // the node's version, uptime, ring and counters
	Events    = "events"    // Args.Since: the ring and health events after a cursor
)

// Names lists every command in the order help shows them.
var Names = []string{
	Inspect, Nodes, Ownership, Lookup, Info, Events, Ping, Get, Has, Weight, Weights,
	Join, Meet, Leave, Insert, MInsert, Update, Remove, MRemove,
}

// Known reports whether name is a command.
func Known(name string) bool {
	for _, n := range Names {
		if n == name {
			return true
		}
	}
	return false
}

// Args is the payload of every command; each command reads the fields its
// comment above names and ignores the rest.
type Args struct {
	ID     string      `msgpack:"id,omitempty"`
	Node   *notp.Node  `msgpack:"node,omitempty"`
	Nodes  []notp.Node `msgpack:"nodes,omitempty"`
	Weight int         `msgpack:"weight,omitempty"` // ≤ 0: the ring's rfactor
	Force  bool        `msgpack:"force,omitempty"`
	// Key is the key of lookup: 1..MaxKeyLen bytes.
	Key string `msgpack:"key,omitempty"`
	// N is the length of lookup's preference list: 0 means the ring's
	// pfactor+1, else 1..MaxLookupN.
	N int `msgpack:"n,omitempty"`
	// Since is the cursor of events: the sequence number of the first
	// event wanted, 0 for none (the reply's Next starts a stream).
	Since uint64 `msgpack:"since,omitempty"`
}

// MaxKeyLen is the longest key lookup accepts, in bytes.
const MaxKeyLen = 1024

// MaxLookupN is the longest preference list lookup returns.
const MaxLookupN = 64

// Reply is the answer to every command.
type Reply struct {
	OK bool `msgpack:"ok" json:"ok"`
	// Data is the command's result as JSON; empty when there is none.
	Data json.RawMessage `msgpack:"data,omitempty" json:"data,omitempty"`
	// Error is set when OK is false.
	Error *Error `msgpack:"error,omitempty" json:"error,omitempty"`
}

// Error describes a failed command.
type Error struct {
	Message string `msgpack:"message" json:"message"`
	// Code is a stable machine-readable code, when there is one.
	Code string `msgpack:"code,omitempty" json:"code,omitempty"`
	// Fields carries per-field validation messages, when there are any.
	Fields map[string]string `msgpack:"fields,omitempty" json:"fields,omitempty"`
}

// Error codes set by the command server.
const (
	CodeBadRequest     = "BAD_REQUEST"     // the payload does not decode or lacks a field
	CodeUnknownCommand = "UNKNOWN_COMMAND" // no such command
	CodeNotAllowed     = "NOT_ALLOWED"     // the sender is a ring member
	CodeFailed         = "FAILED"          // the operation itself failed
)

// OK returns a successful reply carrying data encoded as JSON (nil data
// gives a reply without data).
func OK(data any) (Reply, error) {
	if data == nil {
		return Reply{OK: true}, nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return Reply{}, fmt.Errorf("command: encode reply data: %w", err)
	}
	return Reply{OK: true, Data: b}, nil
}

// Fail returns an ok:false reply.
func Fail(code, message string) Reply {
	return Reply{Error: &Error{Code: code, Message: message}}
}

// ErrInvalidArgs is wrapped by DecodeArgs's errors for a key or a list
// length out of range.
var ErrInvalidArgs = errors.New("command: invalid argument")

// EncodeArgs encodes a command payload.
func EncodeArgs(a Args) ([]byte, error) { return msgpack.Marshal(&a) }

// MaxArgNodes is the most nodes a command payload (Args.Nodes) may carry:
// as many as a gossip ring may hold.
const MaxArgNodes = 10000

// minNodeSize is the fewest payload bytes a valid node takes: the array
// form of its struct, a one-byte id and host and a one-byte port.
const minNodeSize = 6

// argsLimits bound the decoded size of a payload: at most MaxArgNodes
// nodes, each backed by at least minNodeSize bytes of payload.
var argsLimits = msgpackcheck.Limits{Paths: map[string]msgpackcheck.Limit{
	"nodes": {MaxLen: MaxArgNodes, MinElem: minNodeSize},
}}

// DecodeArgs decodes and validates a command payload: nodes must be valid
// (notp.Node.Validate), Key at most MaxKeyLen bytes and N in
// 0..MaxLookupN. An empty payload is the zero Args. Declared
// lengths are checked against the payload's size before decoding, and
// every declared node must be backed by at least the 6 bytes of the
// smallest valid node, at most MaxArgNodes of them. A decoded node takes
// about 100 bytes (the 40-byte struct and its strings), so a forged
// payload cannot make it allocate more than about twenty times its own
// size, nor more than about 1 MB of nodes (a million nils, 1 MB that would
// decode into 40 MB of zero nodes, is rejected before decoding). Trailing
// bytes are an error.
func DecodeArgs(b []byte) (Args, error) {
	var a Args
	if len(b) == 0 {
		return a, nil
	}
	if err := msgpackcheck.UnmarshalLimits(b, &a, argsLimits); err != nil {
		return Args{}, fmt.Errorf("command: decode args: %w", err)
	}
	if a.Node != nil {
		if err := a.Node.Validate(); err != nil {
			return Args{}, fmt.Errorf("command: args: node: %w", err)
		}
	}
	for i, n := range a.Nodes {
		if err := n.Validate(); err != nil {
			return Args{}, fmt.Errorf("command: args: nodes[%d]: %w", i, err)
		}
	}
	if len(a.Key) > MaxKeyLen {
		return Args{}, fmt.Errorf("%w: key of %d bytes, at most %d", ErrInvalidArgs, len(a.Key), MaxKeyLen)
	}
	if a.N < 0 || a.N > MaxLookupN {
		return Args{}, fmt.Errorf("%w: n %d, want 0..%d", ErrInvalidArgs, a.N, MaxLookupN)
	}
	return a, nil
}

// EncodeReply encodes a reply.
func EncodeReply(r Reply) ([]byte, error) { return msgpack.Marshal(&r) }

// DecodeReply decodes a reply and checks that it is well formed: an ok
// reply has no error, a failed one has an error, and Data is valid JSON.
// Like DecodeArgs it checks declared lengths before decoding and rejects
// trailing bytes.
func DecodeReply(b []byte) (Reply, error) {
	var r Reply
	if err := msgpackcheck.Unmarshal(b, &r); err != nil {
		return Reply{}, fmt.Errorf("command: decode reply: %w", err)
	}
	switch {
	case r.OK && r.Error != nil:
		return Reply{}, fmt.Errorf("command: decode reply: ok reply carries an error")
	case !r.OK && r.Error == nil:
		return Reply{}, fmt.Errorf("command: decode reply: failed reply without an error")
	case len(r.Data) > 0 && !json.Valid(r.Data):
		return Reply{}, fmt.Errorf("command: decode reply: data is not valid JSON")
	}
	return r, nil
}
