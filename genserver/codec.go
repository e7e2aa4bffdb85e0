package genserver

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/notp-go/notp/internal/wire"
)

// The request payload a genserver receives through the kernel is the
// msgpack map {"event": str, "data": bin}. It is encoded and decoded by hand
// (no reflection): encodeRequest makes one allocation, decodeRequest none,
// and the decoded data aliases the payload, which the kernel hands over to
// the handler.
//
// The decoder accepts the two keys in either order; "data" may also be a
// msgpack str or nil (other msgpack encoders write []byte as str in
// compatibility mode). Any other shape is an error, never a panic.

// errMalformed is wrapped by every decodeRequest error.
var errMalformed = errors.New("genserver: malformed request payload")

const (
	mpFixMap2 = 0x82
	mpNil     = 0xc0
	mpBin8    = 0xc4
	mpBin16   = 0xc5
	mpBin32   = 0xc6
	mpStr8    = 0xd9
	mpStr16   = 0xda
	mpStr32   = 0xdb
	mpMap16   = 0xde
)

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
	var n int
	switch {
	case len(p) == 0:
		return nil, nil, fmt.Errorf("%w: empty", errMalformed)
	case p[0]&0xf0 == 0x80:
		n, p = int(p[0]&0x0f), p[1:]
	case p[0] == mpMap16 && len(p) >= 3:
		n, p = int(binary.BigEndian.Uint16(p[1:])), p[3:]
	default:
		return nil, nil, fmt.Errorf("%w: not a map (first byte %#x)", errMalformed, p[0])
	}
	if n != 2 {
		return nil, nil, fmt.Errorf("%w: map has %d keys, want event and data", errMalformed, n)
	}
	var haveEvent, haveData bool
	for range n {
		var key []byte
		if key, p, err = readStr(p); err != nil {
			return nil, nil, err
		}
		switch string(key) {
		case "event":
			if haveEvent {
				return nil, nil, fmt.Errorf("%w: duplicate key event", errMalformed)
			}
			if event, p, err = readStr(p); err != nil {
				return nil, nil, err
			}
			haveEvent = true
		case "data":
			if haveData {
				return nil, nil, fmt.Errorf("%w: duplicate key data", errMalformed)
			}
			if data, p, err = readBytes(p); err != nil {
				return nil, nil, err
			}
			haveData = true
		default:
			return nil, nil, fmt.Errorf("%w: unexpected key %q", errMalformed, key)
		}
	}
	if len(p) != 0 {
		return nil, nil, fmt.Errorf("%w: %d trailing bytes", errMalformed, len(p))
	}
	if len(data) == 0 {
		data = nil
	}
	return event, data, nil
}

// readStr reads a msgpack str and returns its bytes (aliasing p) and the rest.
func readStr(p []byte) (s, rest []byte, err error) {
	if len(p) == 0 {
		return nil, nil, fmt.Errorf("%w: truncated (want str)", errMalformed)
	}
	switch c := p[0]; {
	case c&0xe0 == 0xa0:
		return take(p[1:], int(c&0x1f))
	case c == mpStr8, c == mpStr16, c == mpStr32:
		return readSized(p)
	}
	return nil, nil, fmt.Errorf("%w: want str, got type byte %#x", errMalformed, p[0])
}

// readBytes reads a msgpack bin, str or nil.
func readBytes(p []byte) (b, rest []byte, err error) {
	if len(p) == 0 {
		return nil, nil, fmt.Errorf("%w: truncated (want bin)", errMalformed)
	}
	switch c := p[0]; {
	case c == mpNil:
		return nil, p[1:], nil
	case c == mpBin8, c == mpBin16, c == mpBin32:
		return readSized(p)
	}
	return readStr(p)
}

// readSized reads a str8/16/32 or bin8/16/32 item whose length follows the
// type byte.
func readSized(p []byte) (b, rest []byte, err error) {
	var n, h int
	switch p[0] {
	case mpStr8, mpBin8:
		h = 1
	case mpStr16, mpBin16:
		h = 2
	default:
		h = 4
	}
	if len(p) < 1+h {
		return nil, nil, fmt.Errorf("%w: truncated length", errMalformed)
	}
	switch h {
	case 1:
		n = int(p[1])
	case 2:
		n = int(binary.BigEndian.Uint16(p[1:]))
	default:
		u := binary.BigEndian.Uint32(p[1:])
		if uint64(u) > uint64(len(p)) {
			return nil, nil, fmt.Errorf("%w: length %d exceeds payload", errMalformed, u)
		}
		n = int(u)
	}
	return take(p[1+h:], n)
}

func take(p []byte, n int) (b, rest []byte, err error) {
	if n > len(p) {
		return nil, nil, fmt.Errorf("%w: item of %d bytes, %d left", errMalformed, n, len(p))
	}
	return p[:n:n], p[n:], nil
}
