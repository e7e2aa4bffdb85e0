package dlm

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/notp-go/notp/internal/msgpackcheck"
	"github.com/vmihailenco/msgpack/v5"
)

// Replica events. The names are notp's; commit and sweep are new.
// Append-only: a node must understand every event an older node sends.
const (
	evRLock   = "rlock"
	evWLock   = "wlock"
	evRUnlock = "runlock"
	evWUnlock = "wunlock"
	// evCommit records a write lock's fencing token on a replica that
	// still grants it (phase 2 of WLock).
	evCommit = "commit"
	// evSweep makes a replica drop its expired locks; it only removes
	// what has expired, so anyone may send it.
	evSweep = "sweep"
)

// request is the payload of every replica event: notp's {id, holder,
// timeout} (timeout in ms), plus the token of a commit.
type request struct {
	ID      string `msgpack:"id"`
	Holder  string `msgpack:"holder"`
	Timeout int64  `msgpack:"timeout,omitempty"` // ms; lock events only
	Token   uint64 `msgpack:"token,omitempty"`   // commit only
}

// reply answers every replica event. Token is the replica's fencing
// counter after a granted wlock or commit.
type reply struct {
	OK    bool   `msgpack:"ok"`
	Token uint64 `msgpack:"token,omitempty"`
}

// maxPayload bounds a request or reply: two names and two numbers.
const maxPayload = 2*MaxIDLen + 64

func (r request) ttl() time.Duration { return time.Duration(r.Timeout) * time.Millisecond }

// validName checks an ID or holder name.
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

func validTTL(ttl time.Duration) error {
	if ttl < time.Millisecond || ttl > MaxTTL {
		return fmt.Errorf("ttl %v not in [1ms, %v]", ttl, MaxTTL)
	}
	return nil
}

// decodeRequest decodes and validates the payload of event (notp's
// parseJob): id and holder are valid names, lock events carry a timeout in
// [1, MaxTTL] ms and commits a token.
func decodeRequest(event string, b []byte) (request, error) {
	var r request
	if len(b) > maxPayload {
		return r, fmt.Errorf("payload of %d bytes, over %d", len(b), maxPayload)
	}
	if len(b) == 0 {
		return r, fmt.Errorf("empty payload")
	}
	if b[0]&0xf0 != 0x80 && b[0] != 0xde {
		return r, fmt.Errorf("payload is not a map")
	}
	if err := msgpackcheck.Unmarshal(b, &r); err != nil {
		return r, err
	}
	if err := validName("id", r.ID); err != nil {
		return r, err
	}
	if event == evSweep {
		return r, nil
	}
	if err := validName("holder", r.Holder); err != nil {
		return r, err
	}
	switch event {
	case evRLock, evWLock:
		if r.Timeout <= 0 || r.Timeout > MaxTTL.Milliseconds() {
			return r, fmt.Errorf("timeout %d ms not in [1, %d]", r.Timeout, MaxTTL.Milliseconds())
		}
	case evCommit:
		if r.Token == 0 {
			return r, fmt.Errorf("commit without a token")
		}
	case evRUnlock, evWUnlock:
	default:
		return r, fmt.Errorf("unknown event %q", event)
	}
	return r, nil
}

// decodeReply decodes a replica's answer.
func decodeReply(b []byte) (reply, error) {
	var r reply
	if len(b) > maxPayload {
		return r, fmt.Errorf("dlm: reply of %d bytes, over %d", len(b), maxPayload)
	}
	if len(b) == 0 || (b[0]&0xf0 != 0x80 && b[0] != 0xde) {
		return r, fmt.Errorf("dlm: reply is not a map")
	}
	if err := msgpackcheck.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("dlm: reply: %w", err)
	}
	return r, nil
}

func encode(v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("dlm: encode %T: %v", v, err)) // plain structs always encode
	}
	return b
}
