package genserver

import (
	"errors"
	"fmt"

	"github.com/notp-go/notp/internal/wire"
)

// The request payload a genserver receives through the kernel is the
// msgpack map {"event": str, "data": bin}. It is encoded and decoded by hand
// (no reflection): encodeRequest makes one allocation, decodeRequest none
// (it reads through wire.Reader, which checks every declared length against
// the payload), and the decoded data aliases the payload, which the kernel
// hands over to the handler.
//
// The decoder accepts the two keys in either order; "data" may also be a
// msgpack str or nil (other msgpack encoders write []byte as str in
// compatibility mode). Any other shape is an error, never a panic.

// errMalformed is wrapped by every decodeRequest error.
var errMalformed = errors.New("genserver: malformed request payload")

// mpFixMap2 is the msgpack header of a map of two pairs.
const mpFixMap2 = 0x82

// encodeRequest returns the msgpack encoding of {event, data}.
func encodeRequest(event string, data []byte) []byte {
	n := 1 + 6 + strHeaderLen(len(event)) + len(event) + 5 + binHeaderLen(len(data)) + len(data)
	b := make([]byte, 0, n)
	b = append(b, mpFixMap2)
	b = wire.AppendStr(b, "event")
	b = wire.AppendStr(b, event)
	b = wire.AppendStr(b, "data")
	b = wire.AppendBin(b, data)
	return b
}

func strHeaderLen(n int) int {
	switch {
	case n < 32:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	}
	return 5
}

func binHeaderLen(n int) int {
	switch {
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	}
	return 5
}

// decodeRequest decodes a payload written by encodeRequest (or any msgpack
// encoder writing the same map). event and data alias p; data is nil when
// the payload carries nil or an empty byte string.
func decodeRequest(p []byte) (event, data []byte, err error) {
	r := wire.NewReader(p)
	n, err := r.MapLen()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if n != 2 {
		return nil, nil, fmt.Errorf("%w: map has %d keys, want event and data", errMalformed, n)
	}
	var haveEvent, haveData bool
	for range n {
		key, err := r.StrBytes()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: key: %w", errMalformed, err)
		}
		switch string(key) {
		case "event":
			if haveEvent {
				return nil, nil, fmt.Errorf("%w: duplicate key event", errMalformed)
			}
			event, err = r.StrBytes()
			haveEvent = true
		case "data":
			if haveData {
				return nil, nil, fmt.Errorf("%w: duplicate key data", errMalformed)
			}
			data, err = r.Bytes()
			haveData = true
		default:
			return nil, nil, fmt.Errorf("%w: unexpected key %q", errMalformed, key)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", errMalformed, key, err)
		}
	}
	if r.Len() != 0 {
		return nil, nil, fmt.Errorf("%w: %d trailing bytes", errMalformed, r.Len())
	}
	if len(data) == 0 {
		data = nil
	}
	return event, data, nil
}
