// Package msgpackcheck guards every decode of msgpack bytes that came from
// the network or a file.
//
// github.com/vmihailenco/msgpack/v5 (v5.4.1) allocates a bin, an array or a
// slice of the length a value declares before reading its elements, so a
// 10-byte input that declares a 4 GB bin or a 2^28-element array makes it
// allocate that much (and its alloc-limit flag is inverted for slices, so
// DisableAllocLimit(false) does not help). Check walks the encoding first
// and rejects any declared length that cannot fit in the bytes that follow;
// Unmarshal is Check followed by a decode on a fresh decoder. Check reads
// through wire.Reader, the module's one msgpack reader, and shares its
// sentinel ([ErrMalformed]) and nesting bound ([MaxDepth]).
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
	"errors"
	"fmt"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp/internal/wire"
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
// rejected (the decoder would recurse as deep). It is the module's one
// msgpack nesting bound, [wire.MaxDepth].
const MaxDepth = wire.MaxDepth

// ErrMalformed is wrapped by every error Check returns for input that is
// not well formed. It is the wire package's sentinel: Check reads through
// the module's one msgpack reader.
var ErrMalformed = wire.ErrMalformed

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
	r := wire.NewReader(b)
	if err := c.skip(&r, 0, "", c.prefixes != nil); err != nil {
		return err
	}
	if r.Len() > 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, r.Len())
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
// path). Scalars, strs, bins and exts are skipped by the reader, which
// checks their lengths; containers are walked here to apply the limits.
func (c *checker) skip(r *wire.Reader, depth int, path string, tracked bool) error {
	if depth > MaxDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrMalformed, MaxDepth)
	}
	n, isMap, ok, err := r.Container()
	switch {
	case err != nil:
		return err
	case !ok:
		return r.Skip()
	case isMap:
		return c.skipMap(r, n, depth, path, tracked)
	}
	return c.skipArray(r, n, depth, path, tracked)
}

// budget checks a container of n elements at path, whose header the reader
// has checked against the input left, against the limits (ErrLimit).
func (c *checker) budget(left, n int, path string, tracked bool) error {
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
	if minElem > 0 && n > left/minElem {
		return fmt.Errorf("%w: %q declares %d elements of at least %d bytes, %d bytes left",
			ErrLimit, path, n, minElem, left)
	}
	return nil
}

// wantsMap reports whether a configured path names a field (a map key)
// of the container at path. Such a container decodes into a struct, and
// msgpack also fills a struct from an array, field by position, where the
// fields' limits (tracked by key) would not apply: so it must be a map.
func (c *checker) wantsMap(path string) bool {
	prefix := path
	if prefix != "" {
		prefix += "."
	}
	for p := range c.lim.Paths {
		if len(p) > len(prefix) && strings.HasPrefix(p, prefix) && !strings.HasPrefix(p[len(prefix):], "[]") {
			return true
		}
	}
	return false
}

// skipArray skips the n elements of an array at path.
func (c *checker) skipArray(r *wire.Reader, n, depth int, path string, tracked bool) error {
	if err := c.budget(r.Len(), n, path, tracked); err != nil {
		return err
	}
	if tracked && c.wantsMap(path) {
		return fmt.Errorf("%w: %q is an array where a map is expected (its fields have limits)", ErrLimit, path)
	}
	elem := ""
	if tracked {
		elem = path + "[]"
		tracked = c.prefixes[elem]
	}
	for range n {
		if err := c.skip(r, depth+1, elem, tracked); err != nil {
			return err
		}
	}
	return nil
}

// skipMap skips the n key-value pairs of a map at path.
func (c *checker) skipMap(r *wire.Reader, n, depth int, path string, tracked bool) error {
	if err := c.budget(r.Len(), n, path, tracked); err != nil {
		return err
	}
	for range n {
		sub, subTracked := "", false
		if tracked {
			sub, subTracked = c.keyPath(*r, path)
		}
		if err := c.skip(r, depth+1, "", false); err != nil {
			return err
		}
		if err := c.skip(r, depth+1, sub, subTracked); err != nil {
			return err
		}
	}
	return nil
}

// keyPath returns the path of the value under the key r is at, in a map at
// path, and whether it is tracked. A key that is not a str (or is
// malformed: the skip that follows reports it) leads nowhere tracked.
func (c *checker) keyPath(r wire.Reader, path string) (string, bool) {
	key, err := r.StrBytes()
	if err != nil {
		return "", false
	}
	sub := string(key)
	if path != "" {
		sub = path + "." + sub
	}
	return sub, c.prefixes[sub]
}
