// Package wire is the DSM's owner protocol: the events a client sends to
// a semaphore's owner, the hand-off of a semaphore to its next owner, and
// the replies, with decoders that validate and bound what a peer sends.
// Every payload is a msgpack map: notp's {id, n} for create, {id} for
// read and destroy, {id, holder, timeout} for post (timeout in ms),
// {id, holder} for close; a reply is {ok, n, active}.
//
// It imports nothing of the node, so its fuzz targets run fast.
package wire

import (
	"fmt"
	"time"

	"github.com/notp-go/notp/internal/replicated/payload"
)

// Owner events. The first five are notp's; handoff, handed, sweep and
// rebalance are new. Append-only.
const (
	Create  = "create"
	Read    = "read"
	Destroy = "destroy"
	Post    = "post"
	Close   = "close"
	// Handoff installs a semaphore (limit and live holders) from its
	// previous owner.
	Handoff = "handoff"
	// Handed tells a node's own actor a handoff ended; only the node
	// itself may send it.
	Handed = "handed"
	// Sweep drops expired holders; Rebalance looks for semaphores this
	// node no longer owns. Both only act on this node's own view, so
	// anyone may send them.
	Sweep     = "sweep"
	Rebalance = "rebalance"
)

// Request is the payload of the client's events.
type Request struct {
	ID      string `msgpack:"id"`
	N       int    `msgpack:"n,omitempty"`
	Holder  string `msgpack:"holder,omitempty"`
	Timeout int64  `msgpack:"timeout,omitempty"`
}

// TTL is the request's timeout as a duration.
func (r Request) TTL() time.Duration { return time.Duration(r.Timeout) * time.Millisecond }

// HandoffMsg carries a semaphore to its new owner.
type HandoffMsg struct {
	ID      string      `msgpack:"id"`
	N       int         `msgpack:"n"`
	Holders []HandedOff `msgpack:"holders"`
}

// HandedOff is one holder of a handed-off semaphore; Left is its
// remaining TTL in ms.
type HandedOff struct {
	Holder string `msgpack:"holder"`
	Left   int64  `msgpack:"left"`
}

// HandedMsg names a semaphore whose handoff ended and the version that was
// sent; Failed says the new owner did not take it.
type HandedMsg struct {
	ID      string `msgpack:"id"`
	Version uint64 `msgpack:"version"`
	Failed  bool   `msgpack:"failed,omitempty"`
}

// Reply answers every event; N and Active are read's data.
type Reply struct {
	OK     bool `msgpack:"ok"`
	N      int  `msgpack:"n,omitempty"`
	Active int  `msgpack:"active,omitempty"`
}

// MaxRequest bounds every payload but a handoff's.
const MaxRequest = 2*payload.MaxNameLen + 64

// DecodeRequest decodes and validates the payload of event (notp's
// parseJob): create needs an id and 1 <= n <= maxSize, read and destroy an
// id, post an id, holder and timeout in [1, MaxTTL] ms, close an id and
// holder.
func DecodeRequest(event string, b []byte, maxSize int) (Request, error) {
	var r Request
	if err := payload.Decode("payload", b, MaxRequest, &r); err != nil {
		return r, err
	}
	if event == Sweep || event == Rebalance {
		return r, nil
	}
	if err := payload.ValidName("id", r.ID); err != nil {
		return r, err
	}
	switch event {
	case Create:
		if r.N < 1 || r.N > maxSize {
			return r, fmt.Errorf("n %d not in [1, %d]", r.N, maxSize)
		}
	case Read, Destroy:
	case Post, Close:
		if err := payload.ValidName("holder", r.Holder); err != nil {
			return r, err
		}
		if event == Post {
			return r, payload.ValidTimeout(r.Timeout)
		}
	default:
		return r, fmt.Errorf("unknown event %q", event)
	}
	return r, nil
}

// MaxHandoff bounds a handoff of a semaphore of maxSize holders.
func MaxHandoff(maxSize int) int { return 64 + payload.MaxNameLen + maxSize*(payload.MaxNameLen+24) }

// DecodeHandoff decodes and validates a handoff: a valid id, 1 <= n <=
// maxSize, at most maxSize distinct valid holders with time left in
// [1, MaxTTL] ms.
func DecodeHandoff(b []byte, maxSize int) (HandoffMsg, error) {
	var h HandoffMsg
	if err := payload.Decode("handoff", b, MaxHandoff(maxSize), &h); err != nil {
		return h, err
	}
	if err := payload.ValidName("id", h.ID); err != nil {
		return h, err
	}
	if h.N < 1 || h.N > maxSize || len(h.Holders) > maxSize {
		return h, fmt.Errorf("n %d or %d holders not in [1, %d]", h.N, len(h.Holders), maxSize)
	}
	seen := make(map[string]bool, len(h.Holders))
	for _, x := range h.Holders {
		if err := payload.ValidName("holder", x.Holder); err != nil {
			return h, err
		}
		if payload.ValidTimeout(x.Left) != nil || seen[x.Holder] {
			return h, fmt.Errorf("holder %q: duplicate or %d ms left", x.Holder, x.Left)
		}
		seen[x.Holder] = true
	}
	return h, nil
}

// DecodeHanded decodes the end of a handoff.
func DecodeHanded(b []byte) (HandedMsg, error) {
	var h HandedMsg
	err := payload.Decode("handed", b, MaxRequest, &h)
	return h, err
}

// DecodeReply decodes an owner's answer.
func DecodeReply(b []byte) (Reply, error) {
	var r Reply
	if err := payload.Decode("reply", b, MaxRequest, &r); err != nil {
		return r, fmt.Errorf("dsm: %w", err)
	}
	return r, nil
}

// Encode encodes a payload (a message above, or a stored value).
func Encode(v any) []byte { return payload.Encode("dsm", v) }
