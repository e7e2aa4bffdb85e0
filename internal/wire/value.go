package wire

import (
	"errors"
	"fmt"
	"io"
)

// Source is msgpack input read from a stream, such as the decoder a
// msgpack.CustomDecoder is handed: *msgpack.Decoder implements it.
type Source interface {
	// ReadFull reads exactly len(p) bytes.
	ReadFull(p []byte) error
	// Buffered returns the stream's source. When it reports the input
	// left through a Len() int method (a *bytes.Reader, *bytes.Buffer or
	// *strings.Reader does), declared lengths are checked against it.
	Buffered() io.Reader
}

// MaxStreamItem is the longest str, bin or ext payload [ReadValue] accepts
// from a stream that does not report how much input is left.
const MaxStreamItem = 1 << 20

// streamChunk is the most ReadValue allocates ahead of the bytes that
// arrive when it reads a payload of a stream of unknown length; below it,
// a read allocates at most as much as was read before (and 512 bytes at
// first), so the buffer grows by doubling with the bytes that arrive.
const streamChunk = 64 << 10

// ReadValue reads the bytes of one msgpack value from s, for decoding with
// a [Reader]. It trusts no declared length: when s reports the input left,
// a length the input cannot hold is an error before anything is read or
// allocated for it; otherwise a str, bin or ext longer than MaxStreamItem
// is refused and payloads are read through buffers that grow with the
// bytes that arrive. So reading n bytes allocates a small multiple of n.
// Values nest at most [MaxDepth] deep. Errors wrap [ErrMalformed] (and
// [io.ErrUnexpectedEOF] when s ends inside the value).
//
// msgpack's own Decoder must not read such values itself: it grows a
// pooled scratch buffer by up to a megabyte at a time towards a declared
// length before it knows the input holds it, and keeps the grown buffer.
func ReadValue(s Source) ([]byte, error) {
	v := valueReader{s: s}
	v.left, _ = s.Buffered().(interface{ Len() int })
	if err := v.value(0); err != nil {
		return nil, err
	}
	return v.out, nil
}

// valueReader copies one value from s to out.
type valueReader struct {
	s    Source
	left interface{ Len() int } // nil when the input left is unknown
	out  []byte
}

// read appends the next n bytes of the stream to out. n is checked against
// the input left when it is known; otherwise out grows at most as far ahead
// of the bytes read as it already holds (see streamChunk).
func (v *valueReader) read(n int) error {
	for n > 0 {
		k := n
		if v.left == nil {
			k = min(n, streamChunk, max(512, len(v.out)))
		}
		start := len(v.out)
		v.out = append(v.out, make([]byte, k)...)
		if err := v.s.ReadFull(v.out[start:]); err != nil {
			if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		n -= k
	}
	return nil
}

// check checks a declared n against the input left.
func (v *valueReader) check(k kind, n int) error {
	if v.left != nil {
		return fits(k, n, v.left.Len())
	}
	if k == kindBytes && n > MaxStreamItem {
		return fmt.Errorf("%w: item of %d bytes (the limit on a stream is %d)", ErrMalformed, n, MaxStreamItem)
	}
	return nil
}

// value copies one value nested at depth.
func (v *valueReader) value(depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrMalformed, MaxDepth)
	}
	if err := v.read(1); err != nil {
		return err
	}
	c := v.out[len(v.out)-1]
	s, ok := shapeOf(c)
	if !ok {
		return fmt.Errorf("%w: invalid code 0x%02x", ErrMalformed, c)
	}
	n := s.n
	if s.lenSize > 0 {
		if err := v.read(s.lenSize); err != nil {
			return err
		}
		r := Reader{b: v.out[len(v.out)-s.lenSize:]}
		u, _ := r.be(s.lenSize)
		n = int(min(u, 1<<31))
	}
	n += s.extra
	if err := v.check(s.kind, n); err != nil {
		return err
	}
	switch s.kind {
	case kindBytes:
		return v.read(n)
	case kindMap:
		n *= 2
	}
	for range n {
		if err := v.value(depth + 1); err != nil {
			return err
		}
	}
	return nil
}
