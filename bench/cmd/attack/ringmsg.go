package main

// Ring messages (the payload of a cast to "gossip/<ring id>") encoded by
// hand: the gossip package keeps its codec unexported, and an attacker
// writes whatever bytes it likes anyway. The layout is gossip's msgpack
// map {v, type, ring, round, clock, entries}, each entry
// {node: {id, host, port}, weight, version, writer, removed, time} and the
// clock {id: {count, insert, time}}.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/internal/wire"
)

// Gossip message constants (gossip/codec.go).
const (
	ringWireVersion = 1
	ringMsgUpdate   = 2
	ringID          = "ring" // examples/node's default -ring
)

func mpMapLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
}

func mpArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

// mpInt appends v as a msgpack int64 (always 9 bytes: simple and valid).
func mpInt(b []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

func mpBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

// appendRingHeader appends the message map header (7 keys with a pad, 6
// without) and the fields before the entries.
func appendRingHeader(b []byte, withPad bool, clockID string) []byte {
	keys := 6
	if withPad {
		keys = 7
	}
	b = mpMapLen(b, keys)
	b = mpInt(wire.AppendStr(b, "v"), ringWireVersion)
	b = mpInt(wire.AppendStr(b, "type"), ringMsgUpdate)
	b = wire.AppendStr(wire.AppendStr(b, "ring"), ringID)
	b = mpInt(wire.AppendStr(b, "round"), 0)
	b = wire.AppendStr(b, "clock")
	if clockID == "" {
		return mpMapLen(b, 0)
	}
	now := time.Now().UnixMicro()
	b = wire.AppendStr(mpMapLen(b, 1), clockID)
	b = mpMapLen(b, 3)
	b = mpInt(wire.AppendStr(b, "count"), 1)
	b = mpInt(wire.AppendStr(b, "insert"), now)
	return mpInt(wire.AppendStr(b, "time"), now)
}

// nilEntriesMessage is a ring update whose entries are n msgpack nils,
// padded with an unknown "pad" field (which decoders skip) to about size
// bytes.
func nilEntriesMessage(n, size int) []byte {
	b := appendRingHeader(nil, true, "")
	b = mpArrayLen(wire.AppendStr(b, "entries"), n)
	for range n {
		b = append(b, 0xc0)
	}
	b = wire.AppendStr(b, "pad")
	pad := max(0, size-len(b)-5)
	return wire.AppendBin(b, make([]byte, pad))
}

// ringMessage is a valid ring update from writer holding n live entries
// with IDs prefix-000000 and up, all at 127.0.0.1:port.
func ringMessage(writer, prefix string, n, port int) []byte {
	b := appendRingHeader(nil, false, writer)
	b = mpArrayLen(wire.AppendStr(b, "entries"), n)
	now := time.Now().UnixMicro()
	for i := range n {
		b = mpMapLen(b, 6)
		b = mpMapLen(wire.AppendStr(b, "node"), 3)
		b = wire.AppendStr(wire.AppendStr(b, "id"), fmt.Sprintf("%s-%06d", prefix, i))
		b = wire.AppendStr(wire.AppendStr(b, "host"), "127.0.0.1")
		b = mpInt(wire.AppendStr(b, "port"), int64(port))
		b = mpInt(wire.AppendStr(b, "weight"), 1)
		b = mpInt(wire.AppendStr(b, "version"), 1)
		b = wire.AppendStr(wire.AppendStr(b, "writer"), writer)
		b = mpBool(wire.AppendStr(b, "removed"), false)
		b = mpInt(wire.AppendStr(b, "time"), now)
	}
	return b
}

// hasNode asks the node's command server whether its ring has id.
func hasNode(ctx context.Context, c *client, id string) bool {
	r, err := c.command(ctx, command.Has, command.Args{ID: id})
	if err != nil || !r.OK {
		return false
	}
	var has bool
	return json.Unmarshal(r.Data, &has) == nil && has
}

// insertProbe inserts a new node through the command server, as
// notp-cli's insert does, and describes the outcome.
func insertProbe(ctx context.Context, c *client) string {
	n := notp.Node{ID: "probe-insert", Host: "127.0.0.1", Port: 9}
	r, err := c.command(ctx, command.Insert, command.Args{Node: &n, Weight: 1})
	switch {
	case err != nil:
		return fmt.Sprintf("FAILED (%v)", err)
	case !r.OK:
		return fmt.Sprintf("REFUSED (%s: %s)", r.Error.Code, r.Error.Message)
	}
	if !hasNode(ctx, c, n.ID) {
		return "ok, but the node is not in the ring afterwards"
	}
	return "ok"
}
