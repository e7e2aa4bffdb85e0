// Package wire is the DLM's replica protocol: the events a client sends
// to a lock's replicas, their payloads and the replies, with decoders
// that validate and bound what a peer sends. Every payload is a msgpack
// map, notp's {id, holder, timeout} (timeout in ms) plus the token of a
// commit; a reply is {ok, token}.
//
// It imports nothing of the node, so its fuzz targets run fast.
package wire

import (
	"fmt"
	"time"

	"github.com/notp-go/notp/internal/replicated/payload"
)

// Replica events. The names are notp's; commit and sweep are new.
// Append-only: a node must understand every event an older node sends.
const (
	RLock   = "rlock"
	WLock   = "wlock"
	RUnlock = "runlock"
	WUnlock = "wunlock"
	// Commit records a write lock's fencing token on a replica that
	// still grants it (phase 2 of WLock).
	Commit = "commit"
	// Sweep makes a replica drop its expired locks; it only removes
	// what has expired, so anyone may send it.
	Sweep = "sweep"
)

// Request is the payload of every replica event: notp's {id, holder,
// timeout} (timeout in ms), plus the token of a commit.
type Request struct {
	ID      string `msgpack:"id"`
	Holder  string `msgpack:"holder"`
	Timeout int64  `msgpack:"timeout,omitempty"` // ms; lock events only
	Token   uint64 `msgpack:"token,omitempty"`   // commit only
}

// Reply answers every replica event. Token is the replica's fencing
// counter after a granted wlock or commit.
type Reply struct {
	OK    bool   `msgpack:"ok"`
	Token uint64 `msgpack:"token,omitempty"`
}

// MaxPayload bounds a request or reply: two names and two numbers.
const MaxPayload = 2*payload.MaxNameLen + 64

// TTL is the request's timeout as a duration.
func (r Request) TTL() time.Duration { return time.Duration(r.Timeout) * time.Millisecond }

// DecodeRequest decodes and validates the payload of event (notp's
// parseJob): id and holder are valid names, lock events carry a timeout in
// [1, MaxTTL] ms and commits a token.
func DecodeRequest(event string, b []byte) (Request, error) {
	var r Request
	if err := payload.Decode("payload", b, MaxPayload, &r); err != nil {
		return r, err
	}
	if err := payload.ValidName("id", r.ID); err != nil {
		return r, err
	}
	if event == Sweep {
		return r, nil
	}
	if err := payload.ValidName("holder", r.Holder); err != nil {
		return r, err
	}
	switch event {
	case RLock, WLock:
		return r, payload.ValidTimeout(r.Timeout)
	case Commit:
		if r.Token == 0 {
			return r, fmt.Errorf("commit without a token")
		}
	case RUnlock, WUnlock:
	default:
		return r, fmt.Errorf("unknown event %q", event)
	}
	return r, nil
}

// DecodeReply decodes a replica's answer.
func DecodeReply(b []byte) (Reply, error) {
	var r Reply
	if err := payload.Decode("reply", b, MaxPayload, &r); err != nil {
		return r, fmt.Errorf("dlm: %w", err)
	}
	return r, nil
}

// Encode encodes a payload (Request, Reply, or a stored hold).
func Encode(v any) []byte { return payload.Encode("dlm", v) }
