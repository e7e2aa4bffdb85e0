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
//
// # Decoded size
//
// Fitting in the input is not enough: each element of an array becomes a
// Go value of the slice's element type, so an array of a million one-byte
// nils (1 MB) decoded into a slice of 100-byte structs allocates 100 MB
// before the caller can reject the nils. [CheckLimits] and
// [UnmarshalLimits] take [Limits] that bound the decoded size as well:
//
//   - MinElem: every element of an array (every key-value pair of a map) is
//     taken to need at least this many bytes of input, so a container
//     declaring n elements needs n×MinElem bytes after its header. With
//     MinElem near the decoded size of an element, the decoded slices
//     cannot outgrow the input.
//   - Paths: limits for the containers at given paths, for callers that
//     know their schema: a maximum element count (gossip caps ring entries
//     at its node limit, so a valid-looking message cannot decode into a
//     state larger than the node may hold) and a per-path MinElem (the
//     size of the smallest valid encoding of an element).
//
// A path names a container by the map keys (strings) that lead to it from
// the top, joined with ".", and "[]" for the elements of an array:
// "entries" is the array under the top-level key "entries", "entries[]"
// each of its elements, "a.b" the value of key "b" in the map under "a".
// The top-level value is "".
//
// Check walks the input once and allocates nothing (beyond the error);
// path tracking costs an allocation per map key or array element only along
// the prefixes of the configured paths.
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
	return UnmarshalLimits(b, v, Limits{})
}

// UnmarshalLimits checks b with CheckLimits and then decodes it into v with
// a decoder of its own.
func UnmarshalLimits(b []byte, v any, lim Limits) error {
	if err := CheckLimits(b, lim); err != nil {
		return err
	}
	return msgpack.NewDecoder(bytes.NewReader(b)).Decode(v)
}

// Limits bound the decoded size of a checked value beyond its structure
// (see the package documentation). The zero Limits checks the structure
// only, as Check does.
type Limits struct {
	// MinElem is the fewest bytes of input each array element (each map
	// key-value pair) is taken to need: a container declaring n elements
	// with fewer than n×MinElem bytes after its header is rejected.
	// 0 = 1 per array element, 2 per map pair (what any encoding needs).
	MinElem int
	// Paths sets limits on the containers (arrays or maps) at the given
	// paths; a Limit's zero fields fall back to the defaults above.
	Paths map[string]Limit
}

// Limit bounds one container of a checked value.
type Limit struct {
	// MaxLen is the most elements (map pairs) the container may declare;
	// 0 = no bound but the input's size.
	MaxLen int
	// MinElem overrides Limits.MinElem for this container's elements.
	MinElem int
}

// ErrLimit is wrapped by the errors CheckLimits returns for input that is
// well formed but exceeds a Limit or the MinElem budget.
var ErrLimit = errors.New("msgpack: decode limit exceeded")

// MaxDepth bounds the nesting of a checked value: deeper values are
// rejected (the decoder would recurse as deep).
const MaxDepth = 32

// ErrMalformed is wrapped by every error Check returns.
var ErrMalformed = errors.New("msgpack: malformed input")

// Check walks one msgpack value without decoding it and rejects declared
// lengths that cannot fit in the bytes that follow, nesting deeper than
// MaxDepth, invalid codes and trailing bytes. Every element takes at least
// one byte, so after Check no length the decoder allocates by exceeds len(b).
// It is CheckLimits with the zero Limits.
func Check(b []byte) error {
	return CheckLimits(b, Limits{})
}

// CheckLimits is Check that also enforces lim: errors for well-formed input
// that exceeds it wrap ErrLimit, the others ErrMalformed.
func CheckLimits(b []byte, lim Limits) error {
	c := checker{lim: lim}
	if len(lim.Paths) > 0 {
		c.prefixes = make(map[string]bool)
		for p := range lim.Paths {
			for i := range len(p) + 1 {
				if i == len(p) || p[i] == '.' || p[i] == '[' {
					c.prefixes[p[:i]] = true
				}
			}
		}
	}
	rest, err := c.skip(b, 0, "", c.prefixes != nil)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
	}
	return nil
}

// checker holds the limits of one CheckLimits call. prefixes holds every
// prefix of a configured path: below other paths nothing is tracked.
type checker struct {
	lim      Limits
	prefixes map[string]bool
}

// skip skips one value at path (tracked: path is a prefix of a configured
// path) and returns the bytes after it.
func (ck *checker) skip(b []byte, depth int, path string, tracked bool) ([]byte, error) {
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
		return ck.skipMap(b, int(c&0x0f), depth, path, tracked)
	case c <= 0x9f: // fixarray
		return ck.skipArray(b, int(c&0x0f), depth, path, tracked)
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
		return ck.skipArray(rest, n, depth, path, tracked)
	case 0xde, 0xdf: // map16, map32
		n, rest, err := length(b, 2<<(c-0xde))
		if err != nil {
			return nil, err
		}
		return ck.skipMap(rest, n, depth, path, tracked)
	}
	return nil, fmt.Errorf("%w: invalid code 0x%02x", ErrMalformed, c) // 0xc1
}

// budget checks a container of n elements at path against the input left
// (one byte per value: ErrMalformed) and the limits (ErrLimit). def is the
// fewest bytes an element needs in any encoding.
func (c *checker) budget(b []byte, n, def int, path string, tracked bool) error {
	if n > len(b)/def {
		return fmt.Errorf("%w: %d elements declared, %d bytes left", ErrMalformed, n, len(b))
	}
	minElem := c.lim.MinElem
	if tracked {
		if l, ok := c.lim.Paths[path]; ok {
			if l.MaxLen > 0 && n > l.MaxLen {
				return fmt.Errorf("%w: %q declares %d elements, max %d", ErrLimit, path, n, l.MaxLen)
			}
			if l.MinElem > 0 {
				minElem = l.MinElem
			}
		}
	}
	if minElem > def && n > len(b)/minElem {
		return fmt.Errorf("%w: %q declares %d elements of at least %d bytes, %d bytes left",
			ErrLimit, path, n, minElem, len(b))
	}
	return nil
}

// skipArray skips the n elements of an array at path.
func (c *checker) skipArray(b []byte, n, depth int, path string, tracked bool) ([]byte, error) {
	if err := c.budget(b, n, 1, path, tracked); err != nil {
		return nil, err
	}
	elem := ""
	if tracked {
		elem = path + "[]"
		tracked = c.prefixes[elem]
	}
	var err error
	for range n {
		if b, err = c.skip(b, depth+1, elem, tracked); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// skipMap skips the n key-value pairs of a map at path.
func (c *checker) skipMap(b []byte, n, depth int, path string, tracked bool) ([]byte, error) {
	if err := c.budget(b, n, 2, path, tracked); err != nil {
		return nil, err
	}
	var err error
	for range n {
		key := b
		if b, err = c.skip(b, depth+1, "", false); err != nil {
			return nil, err
		}
		sub, subTracked := "", false
		if tracked {
			if k, ok := strKey(key[:len(key)-len(b)]); ok {
				sub = k
				if path != "" {
					sub = path + "." + k
				}
				subTracked = c.prefixes[sub]
			}
		}
		if b, err = c.skip(b, depth+1, sub, subTracked); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// strKey returns the string encoded by the (checked) value k, if it is one.
func strKey(k []byte) (string, bool) {
	c := k[0]
	switch {
	case c >= 0xa0 && c <= 0xbf:
		return string(k[1:]), true
	case c == 0xd9:
		return string(k[2:]), true
	case c == 0xda:
		return string(k[3:]), true
	case c == 0xdb:
		return string(k[5:]), true
	}
	return "", false
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
