package dsm

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/notp-go/notp/internal/msgpackcheck"
	"github.com/vmihailenco/msgpack/v5"
)

// Owner events. The first five are notp's; handoff, sweep and rebalance
// are new. Append-only.
const (
	evCreate  = "create"
	evRead    = "read"
	evDestroy = "destroy"
	evPost    = "post"
	evClose   = "close"
	// evHandoff installs a semaphore (limit and live holders) from its
	// previous owner.
	evHandoff = "handoff"
	// evSweep drops expired holders; evRebalance looks for semaphores
	// this node no longer owns. Both only act on this node's own view,
	// so anyone may send them.
	evSweep     = "sweep"
	evRebalance = "rebalance"
)

// request is notp's payload: {id, n} for create, {id} for read and
// destroy, {id, holder, timeout} for post (timeout in ms), {id, holder}
// for close.
type request struct {
	ID      string `msgpack:"id"`
	N       int    `msgpack:"n,omitempty"`
	Holder  string `msgpack:"holder,omitempty"`
	Timeout int64  `msgpack:"timeout,omitempty"`
}

// handoff carries a semaphore to its new owner; Left is each holder's
// remaining TTL in ms.
type handoff struct {
	ID      string      `msgpack:"id"`
	N       int         `msgpack:"n"`
	Holders []handedOff `msgpack:"holders"`
}

type handedOff struct {
	Holder string `msgpack:"holder"`
	Left   int64  `msgpack:"left"`
}

// reply answers every event; N and Active are read's data.
type reply struct {
	OK     bool `msgpack:"ok"`
	N      int  `msgpack:"n,omitempty"`
	Active int  `msgpack:"active,omitempty"`
}

func validName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty", what)
	case len(s) > MaxIDLen:
		return fmt.Errorf("%s is %d bytes, over %d", what, len(s), MaxIDLen)
	case !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s is not valid UTF-8 without NUL", what)
	}
	return nil
}

func isMap(b []byte) bool { return len(b) > 0 && (b[0]&0xf0 == 0x80 || b[0] == 0xde || b[0] == 0xdf) }

// maxRequest bounds a request other than a handoff.
const maxRequest = 2*MaxIDLen + 64

// decodeRequest decodes and validates the payload of event (notp's
// parseJob): create needs an id and 1 <= n <= maxSize, read and destroy an
// id, post an id, holder and timeout in [1, MaxTTL] ms, close an id and
// holder.
func decodeRequest(event string, b []byte, maxSize int) (request, error) {
	var r request
	if len(b) > maxRequest {
		return r, fmt.Errorf("payload of %d bytes, over %d", len(b), maxRequest)
	}
	if !isMap(b) {
		return r, fmt.Errorf("payload is not a map")
	}
	if err := msgpackcheck.Unmarshal(b, &r); err != nil {
		return r, err
	}
	if event == evSweep || event == evRebalance {
		return r, nil
	}
	if err := validName("id", r.ID); err != nil {
		return r, err
	}
	switch event {
	case evCreate:
		if r.N < 1 || r.N > maxSize {
			return r, fmt.Errorf("n %d not in [1, %d]", r.N, maxSize)
		}
	case evRead, evDestroy:
	case evPost, evClose:
		if err := validName("holder", r.Holder); err != nil {
			return r, err
		}
		if event == evPost && (r.Timeout <= 0 || r.Timeout > MaxTTL.Milliseconds()) {
			return r, fmt.Errorf("timeout %d ms not in [1, %d]", r.Timeout, MaxTTL.Milliseconds())
		}
	default:
		return r, fmt.Errorf("unknown event %q", event)
	}
	return r, nil
}

// maxHandoff bounds a handoff of a semaphore of maxSize holders.
func maxHandoff(maxSize int) int { return 64 + MaxIDLen + maxSize*(MaxIDLen+24) }

// decodeHandoff decodes and validates a handoff: a valid id, 1 <= n <=
// maxSize, at most maxSize distinct valid holders with positive time left.
func decodeHandoff(b []byte, maxSize int) (handoff, error) {
	var h handoff
	if len(b) > maxHandoff(maxSize) {
		return h, fmt.Errorf("handoff of %d bytes, over %d", len(b), maxHandoff(maxSize))
	}
	if !isMap(b) {
		return h, fmt.Errorf("handoff is not a map")
	}
	if err := msgpackcheck.Unmarshal(b, &h); err != nil {
		return h, err
	}
	if err := validName("id", h.ID); err != nil {
		return h, err
	}
	if h.N < 1 || h.N > maxSize || len(h.Holders) > maxSize {
		return h, fmt.Errorf("n %d or %d holders not in [1, %d]", h.N, len(h.Holders), maxSize)
	}
	seen := make(map[string]bool, len(h.Holders))
	for _, x := range h.Holders {
		if err := validName("holder", x.Holder); err != nil {
			return h, err
		}
		if x.Left <= 0 || x.Left > MaxTTL.Milliseconds() || seen[x.Holder] {
			return h, fmt.Errorf("holder %q: duplicate or %d ms left", x.Holder, x.Left)
		}
		seen[x.Holder] = true
	}
	return h, nil
}

// decodeReply decodes an owner's answer.
func decodeReply(b []byte) (reply, error) {
	var r reply
	if len(b) > maxRequest || !isMap(b) {
		return r, fmt.Errorf("dsm: reply is not a small map")
	}
	if err := msgpackcheck.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("dsm: reply: %w", err)
	}
	return r, nil
}

func (r request) ttl() time.Duration { return time.Duration(r.Timeout) * time.Millisecond }

func encode(v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("dsm: encode %T: %v", v, err)) // plain structs always encode
	}
	return b
}

// decodeMsgpack decodes a small internal message.
func decodeMsgpack(b []byte, v any) error {
	if len(b) > maxRequest || !isMap(b) {
		return fmt.Errorf("not a small map")
	}
	return msgpackcheck.Unmarshal(b, v)
}
