// Package msgpackread reads msgpack without trusting declared lengths, for
// the standalone decoders of chash and vclock, which take untrusted bytes
// outside the network path that internal/msgpackcheck guards.
package msgpackread

import (
	"errors"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Reading msgpack without trusting declared lengths.
//
// msgpack.Unmarshal decodes with a pooled *msgpack.Decoder. When that
// decoder reads or skips a str, bin or ext value (DecodeString, Skip), it
// reads the declared length into its scratch buffer, growing the buffer by
// up to 1 MiB at a time before it knows whether the input holds that many
// bytes, and it keeps the grown buffer when the read fails; the decoder then
// goes back to the pool. So a 30-byte input whose unknown field declares a
// 3.3 GB bin costs at least a megabyte per decode, and repeated inputs grow
// the pooled buffers step by step up to the declared size: a fuzz worker
// decoding such inputs held 7 GB after a few dozen of them and was killed.
// (DecodeBytes is worse: it allocates a declared length in one go, and
// Skip recurses into nested arrays without a depth limit.)
//
// The decoders here therefore never let msgpack read a length-prefixed
// value. A Reader reads every str, bin, ext, array and map header
// itself, checks the declared length against the input still left, and
// reads or discards the payload through buffers of its own sized by the
// bytes that actually arrive. msgpack.Unmarshal and a Decoder over a
// *bytes.Reader, *bytes.Buffer or *strings.Reader expose how much input is
// left (their Len); for a reader that does not, a str, bin or ext longer
// than maxStreamLen is rejected. Fixed-size values (integers) are still
// read through the Decoder: they need at most 8 bytes. Strings are read
// plainly, so a Decoder's interned-string and dictionary modes do not apply
// here (the encoders here never use them).

// maxStreamLen is the longest str, bin or ext payload accepted when the
// decoder's input does not report its remaining length.
const maxStreamLen = 1 << 20

// maxSkipDepth bounds the nesting of a skipped value: msgpack's own Skip
// recurses once per level, so a few megabytes of nested array headers
// would otherwise need a stack of gigabytes.
const maxSkipDepth = 32

// errTooLong is wrapped by the errors for declared lengths the input cannot
// hold.
var errTooLong = errors.New("declared length exceeds the input")

// Reader reads length-prefixed msgpack values from dec with their
// declared lengths checked; see above. Fixed-size values are read through
// [Reader.Decoder].
type Reader struct {
	dec     *msgpack.Decoder
	src     interface{ Len() int } // nil when the remaining input is unknown
	scratch [512]byte
}

// New returns a Reader of dec's input.
func New(dec *msgpack.Decoder) *Reader {
	r := &Reader{dec: dec}
	r.src, _ = dec.Buffered().(interface{ Len() int })
	return r
}

// Decoder returns the decoder r reads from, for fixed-size values
// (integers, bools), which need at most 9 bytes.
func (r *Reader) Decoder() *msgpack.Decoder { return r.dec }

// fits checks that n elements of at least size bytes each fit in the input
// left. what names the value for the error.
func (r *Reader) fits(what string, n, size int) error {
	if r.src == nil {
		if size == 1 && n > maxStreamLen {
			return fmt.Errorf("%w: %s of %d bytes (the limit on a stream is %d)", errTooLong, what, n, maxStreamLen)
		}
		return nil
	}
	if left := r.src.Len(); n > left/size {
		return fmt.Errorf("%w: %s declares %d, %d bytes of input are left", errTooLong, what, n, left)
	}
	return nil
}

// read reads exactly len(b) bytes.
func (r *Reader) read(b []byte) error {
	if err := r.dec.ReadFull(b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// uint reads a big-endian unsigned integer of size bytes (1, 2 or 4).
func (r *Reader) uint(size int) (int, error) {
	b := r.scratch[:size]
	if err := r.read(b); err != nil {
		return 0, err
	}
	n := 0
	for _, c := range b {
		n = n<<8 | int(c)
	}
	return n, nil
}

// code reads the next type code.
func (r *Reader) code() (byte, error) {
	if err := r.read(r.scratch[:1]); err != nil {
		return 0, err
	}
	return r.scratch[0], nil
}

// containerLen reads the element count after code c of an array (pairs=false)
// or map (pairs=true); ok is false for any other code.
func (r *Reader) containerLen(c byte) (n int, pairs, ok bool, err error) {
	switch {
	case msgpcode.IsFixedArray(c):
		return int(c & msgpcode.FixedArrayMask), false, true, nil
	case msgpcode.IsFixedMap(c):
		return int(c & msgpcode.FixedMapMask), true, true, nil
	case c == msgpcode.Array16, c == msgpcode.Map16:
		n, err = r.uint(2)
	case c == msgpcode.Array32, c == msgpcode.Map32:
		n, err = r.uint(4)
	default:
		return 0, false, false, nil
	}
	return n, c == msgpcode.Map16 || c == msgpcode.Map32, true, err
}

// bytesLen reads the payload length after code c of a str or bin; ok is
// false for any other code.
func (r *Reader) bytesLen(c byte) (n int, ok bool, err error) {
	switch {
	case msgpcode.IsFixedString(c):
		return int(c & msgpcode.FixedStrMask), true, nil
	case c == msgpcode.Str8, c == msgpcode.Bin8:
		n, err = r.uint(1)
	case c == msgpcode.Str16, c == msgpcode.Bin16:
		n, err = r.uint(2)
	case c == msgpcode.Str32, c == msgpcode.Bin32:
		n, err = r.uint(4)
	default:
		return 0, false, nil
	}
	return n, true, err
}

// MapLen reads a map header: the number of key-value pairs, or -1 for nil.
func (r *Reader) MapLen() (int, error) {
	return r.collLen("map", true)
}

// ArrayLen reads an array header: the number of elements, or -1 for nil.
func (r *Reader) ArrayLen() (int, error) {
	return r.collLen("array", false)
}

func (r *Reader) collLen(what string, wantPairs bool) (int, error) {
	c, err := r.code()
	if err != nil {
		return 0, err
	}
	if c == msgpcode.Nil {
		return -1, nil
	}
	n, pairs, ok, err := r.containerLen(c)
	if err != nil {
		return 0, err
	}
	if !ok || pairs != wantPairs {
		return 0, fmt.Errorf("msgpack code 0x%02x is not a %s", c, what)
	}
	size := 1
	if pairs {
		size = 2
	}
	return n, r.fits(what, n, size)
}

// Str reads a str (or bin, as msgpack's DecodeString does); nil reads as "".
func (r *Reader) Str() (string, error) {
	c, err := r.code()
	if err != nil {
		return "", err
	}
	if c == msgpcode.Nil {
		return "", nil
	}
	n, ok, err := r.bytesLen(c)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("msgpack code 0x%02x is not a string", c)
	}
	if err := r.fits("string", n, 1); err != nil {
		return "", err
	}
	if n <= len(r.scratch) {
		b := r.scratch[:n]
		if err := r.read(b); err != nil {
			return "", err
		}
		return string(b), nil
	}
	b, err := r.readN(n)
	return string(b), err
}

// readN reads n bytes into a buffer that grows with the bytes read, so a
// length that the input does not hold costs no more than the input.
func (r *Reader) readN(n int) ([]byte, error) {
	var b []byte
	for len(b) < n {
		k := min(n-len(b), 64<<10)
		b = append(b, make([]byte, k)...)
		if err := r.read(b[len(b)-k:]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// discard reads and drops n bytes.
func (r *Reader) discard(n int) error {
	for n > 0 {
		k := min(n, len(r.scratch))
		if err := r.read(r.scratch[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// Skip reads and drops one value of any type.
func (r *Reader) Skip() error {
	return r.skipDepth(0)
}

func (r *Reader) skipDepth(depth int) error {
	c, err := r.code()
	if err != nil {
		return err
	}
	if n, pairs, ok, err := r.containerLen(c); ok || err != nil {
		if err != nil {
			return err
		}
		return r.skipElems(n, pairs, depth)
	}
	if n, ok, err := r.bytesLen(c); ok || err != nil {
		if err != nil {
			return err
		}
		if err := r.fits("str or bin", n, 1); err != nil {
			return err
		}
		return r.discard(n)
	}
	n, err := r.fixedOrExt(c)
	if err != nil {
		return err
	}
	return r.discard(n)
}

// skipElems skips the n elements (pairs: n key-value pairs) of a container.
func (r *Reader) skipElems(n int, pairs bool, depth int) error {
	if depth >= maxSkipDepth {
		return fmt.Errorf("value nested deeper than %d levels", maxSkipDepth)
	}
	if pairs {
		if err := r.fits("map", n, 2); err != nil {
			return err
		}
		n *= 2
	} else if err := r.fits("array", n, 1); err != nil {
		return err
	}
	for range n {
		if err := r.skipDepth(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// fixedOrExt returns the number of bytes after code c of a scalar or ext
// value (an ext's length header is read here, and checked).
func (r *Reader) fixedOrExt(c byte) (int, error) {
	switch {
	case msgpcode.IsFixedNum(c), c == msgpcode.Nil, c == msgpcode.False, c == msgpcode.True:
		return 0, nil
	case c == msgpcode.Uint8, c == msgpcode.Int8:
		return 1, nil
	case c == msgpcode.Uint16, c == msgpcode.Int16:
		return 2, nil
	case c == msgpcode.Uint32, c == msgpcode.Int32, c == msgpcode.Float:
		return 4, nil
	case c == msgpcode.Uint64, c == msgpcode.Int64, c == msgpcode.Double:
		return 8, nil
	case c == msgpcode.FixExt1, c == msgpcode.FixExt2, c == msgpcode.FixExt4, c == msgpcode.FixExt8, c == msgpcode.FixExt16:
		return 1 + 1<<(c-msgpcode.FixExt1), nil // type byte + 1..16 data bytes
	}
	size := 0
	switch c {
	case msgpcode.Ext8:
		size = 1
	case msgpcode.Ext16:
		size = 2
	case msgpcode.Ext32:
		size = 4
	default:
		return 0, fmt.Errorf("invalid msgpack code 0x%02x", c)
	}
	n, err := r.uint(size)
	if err != nil {
		return 0, err
	}
	if err := r.fits("ext", n, 1); err != nil {
		return 0, err
	}
	return 1 + n, nil // type byte + data
}
