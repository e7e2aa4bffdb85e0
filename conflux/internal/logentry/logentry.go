// Package logentry is the layout of a conflux log entry: an action's
// msgpack behind a fixed header that carries the request ID that made it
// and the proposal number of the leader that appended it. It is a package
// of its own, linking nothing but the standard library, so that its fuzz
// target does not pay for Raft and the node on every execution (Go's fuzz
// worker resets and scans the coverage counters of everything the test
// binary links).
package logentry

import (
	"encoding/binary"
	"errors"
)

// An Entry is one log command: an action, with the request ID that made
// it (C, Q; empty without a request ID) and the proposal number of the
// leader that appended it (P; it lets that leader recognise its own
// in-flight actions as they apply).
type Entry struct {
	A []byte // msgpack of the action
	C string
	Q uint64
	P uint64
}

// The layout (hand-encoded: it is decoded for every applied entry):
//
//	version(1) = 1 | P u64be | Q u64be | len(C) u8 | C | action (msgpack, to the end)
//
// The version byte is append-only.
const (
	Version   byte = 1
	HeaderLen      = 1 + 8 + 8 + 1
)

// MaxClientLen bounds the client name of a request ID (C).
const MaxClientLen = 64

// ErrMalformed is Decode's error for bytes that are not an entry.
var ErrMalformed = errors.New("conflux: malformed log entry")

// Append appends the encoding of e to b. A C longer than MaxClientLen is
// the caller's error: Decode refuses it.
func Append(b []byte, e *Entry) []byte {
	b = append(b, Version)
	b = binary.BigEndian.AppendUint64(b, e.P)
	b = binary.BigEndian.AppendUint64(b, e.Q)
	b = append(b, byte(len(e.C)))
	b = append(b, e.C...)
	return append(b, e.A...)
}

// ActionOffset is where the action starts in an entry whose client name
// is c.
func ActionOffset(c string) int { return HeaderLen + len(c) }

// Decode decodes an entry into e; e.A aliases b.
func Decode(b []byte, e *Entry) error {
	if len(b) < HeaderLen || b[0] != Version {
		return ErrMalformed
	}
	n := int(b[HeaderLen-1])
	if n > MaxClientLen || len(b) < HeaderLen+n {
		return ErrMalformed
	}
	e.P = binary.BigEndian.Uint64(b[1:])
	e.Q = binary.BigEndian.Uint64(b[9:])
	e.C = string(b[HeaderLen : HeaderLen+n])
	e.A = b[HeaderLen+n:]
	return nil
}
