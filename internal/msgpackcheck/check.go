// Package msgpackcheck guards every decode of msgpack bytes that came from
// the network or a file.
//
// github.com/vmihailenco/msgpack/v5 (v5.4.1) allocates a bin, an array or a
// slice of the length a value declares before reading its elements, so a
// 10-byte input that declares a 4 GB bin or a 2^28-element array makes it
// allocate that much (and its alloc-limit flag is inverted for slices, so
// DisableAllocLimit(false) does not help). Check walks the encoding first
// and rejects any declared length that cannot fit in the bytes that follow;
// Unmarshal is Check followed by a decode on a fresh decoder.
package msgpackcheck

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Unmarshal checks b with Check and then decodes it into v with a decoder
// of its own (msgpack.Unmarshal's pooled decoders keep grown buffers).
func Unmarshal(b []byte, v any) error {
	if err := Check(b); err != nil {
		return err
	}
	return msgpack.NewDecoder(bytes.NewReader(b)).Decode(v)
}

// MaxDepth bounds the nesting of a checked value: deeper values are
// rejected (the decoder would recurse as deep).
const MaxDepth = 32

// ErrMalformed is wrapped by every error Check returns.
var ErrMalformed = errors.New("msgpack: malformed input")

// Check walks one msgpack value without decoding it and rejects declared
// lengths that cannot fit in the bytes that follow, nesting deeper than
// MaxDepth, invalid codes and trailing bytes. Every element takes at least
// one byte, so after Check no length the decoder allocates by exceeds len(b).
func Check(b []byte) error {
	rest, err := skip(b, 0)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
	}
	return nil
}

// skip skips one value and returns the bytes after it.
func skip(b []byte, depth int) ([]byte, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: unexpected end", ErrMalformed)
	}
	if depth > MaxDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", ErrMalformed, MaxDepth)
	}
	c, b := b[0], b[1:]
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixints, nil, bools
		return b, nil
	case c <= 0x8f: // fixmap
		return skipN(b, 2*int(c&0x0f), depth)
	case c <= 0x9f: // fixarray
		return skipN(b, int(c&0x0f), depth)
	case c <= 0xbf: // fixstr
		return take(b, int(c&0x1f))
	}
	switch c {
	case 0xc4, 0xd9: // bin8, str8
		return blob(b, 1, 0)
	case 0xc5, 0xda: // bin16, str16
		return blob(b, 2, 0)
	case 0xc6, 0xdb: // bin32, str32
		return blob(b, 4, 0)
	case 0xc7, 0xc8, 0xc9: // ext8, ext16, ext32: length, type, data
		return blob(b, 1<<(c-0xc7), 1)
	case 0xcc, 0xd0: // uint8, int8
		return take(b, 1)
	case 0xcd, 0xd1: // uint16, int16
		return take(b, 2)
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return take(b, 4)
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return take(b, 8)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1..16, plus the type byte
		return take(b, 1+1<<(c-0xd4))
	case 0xdc, 0xdd: // array16, array32
		n, rest, err := length(b, 2<<(c-0xdc))
		if err != nil {
			return nil, err
		}
		return skipN(rest, n, depth)
	case 0xde, 0xdf: // map16, map32
		n, rest, err := length(b, 2<<(c-0xde))
		if err != nil {
			return nil, err
		}
		return skipN(rest, 2*n, depth)
	}
	return nil, fmt.Errorf("%w: invalid code 0x%02x", ErrMalformed, c) // 0xc1
}

// skipN skips n values after checking that they can fit.
func skipN(b []byte, n, depth int) ([]byte, error) {
	if n > len(b) {
		return nil, fmt.Errorf("%w: %d elements declared, %d bytes left", ErrMalformed, n, len(b))
	}
	var err error
	for range n {
		if b, err = skip(b, depth+1); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// length reads a big-endian length of 1, 2 or 4 bytes.
func length(b []byte, size int) (int, []byte, error) {
	if len(b) < size {
		return 0, nil, fmt.Errorf("%w: unexpected end", ErrMalformed)
	}
	switch size {
	case 1:
		return int(b[0]), b[1:], nil
	case 2:
		return int(binary.BigEndian.Uint16(b)), b[2:], nil
	}
	return int(binary.BigEndian.Uint32(b)), b[4:], nil
}

// blob skips a length-prefixed str, bin or ext with extra bytes (ext's
// type) between the length and the data.
func blob(b []byte, size, extra int) ([]byte, error) {
	n, rest, err := length(b, size)
	if err != nil {
		return nil, err
	}
	return take(rest, n+extra)
}

// take skips n bytes.
func take(b []byte, n int) ([]byte, error) {
	if n > len(b) {
		return nil, fmt.Errorf("%w: %d bytes declared, %d left", ErrMalformed, n, len(b))
	}
	return b[n:], nil
}
