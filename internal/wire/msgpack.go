package wire

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The msgpack primitives of the module's hand-written codecs: the append
// functions that encode, and [Reader], the one msgpack reader that every
// hand-written decoder (envelopes, hellos, genserver requests, the chash
// and vclock codecs, msgpackcheck) reads through.
//
// A Reader works on a byte slice and trusts no declared length: a str, bin
// or ext longer than the bytes left, an array declaring more elements than
// bytes left or a map more pairs than half of them is an error before
// anything is read or allocated for it, so decoding n bytes allocates at
// most a small multiple of n whatever the input declares. Values nest at
// most [MaxDepth] containers deep. Errors wrap [ErrMalformed].

// MaxDepth is the deepest a value read by a [Reader] or [ReadValue] may
// nest: the top value is at depth 0 and the elements of a container at
// depth d are at depth d+1. A skip recurses once per level, so the bound
// keeps a few megabytes of nested array headers from needing a stack of
// gigabytes.
const MaxDepth = 32

// msgpack type codes used by name below.
const (
	mpNil     = 0xc0
	mpFalse   = 0xc2
	mpTrue    = 0xc3
	mpBin8    = 0xc4
	mpBin16   = 0xc5
	mpBin32   = 0xc6
	mpUint8   = 0xcc
	mpUint64  = 0xcf
	mpInt8    = 0xd0
	mpInt64   = 0xd3
	mpStr8    = 0xd9
	mpStr16   = 0xda
	mpStr32   = 0xdb
	mpArray16 = 0xdc
	mpArray32 = 0xdd
	mpMap16   = 0xde
	mpMap32   = 0xdf
)

// kind is what a type code introduces.
type kind uint8

const (
	kindBytes kind = iota // a scalar, str, bin or ext: payload bytes only
	kindArray             // n elements follow
	kindMap               // n key-value pairs follow
)

// shape describes what follows a type code: lenSize bytes of big-endian
// length (0: the length is n), then extra bytes (an ext's type), then the
// payload (kindBytes) or the elements.
type shape struct {
	kind    kind
	lenSize int
	n       int
	extra   int
}

// shapeOf returns the shape of values starting with code c; ok is false
// for the one invalid code, 0xc1.
func shapeOf(c byte) (s shape, ok bool) {
	switch {
	case c <= 0x7f || c >= 0xe0 || c == mpNil || c == mpFalse || c == mpTrue: // fixints, nil, bools
		return shape{}, true
	case c <= 0x8f:
		return shape{kind: kindMap, n: int(c & 0x0f)}, true
	case c <= 0x9f:
		return shape{kind: kindArray, n: int(c & 0x0f)}, true
	case c <= 0xbf:
		return shape{n: int(c & 0x1f)}, true // fixstr
	}
	switch c {
	case mpBin8, mpStr8:
		return shape{lenSize: 1}, true
	case mpBin16, mpStr16:
		return shape{lenSize: 2}, true
	case mpBin32, mpStr32:
		return shape{lenSize: 4}, true
	case 0xc7, 0xc8, 0xc9: // ext8, ext16, ext32: length, type, data
		return shape{lenSize: 1 << (c - 0xc7), extra: 1}, true
	case mpUint8, mpInt8:
		return shape{n: 1}, true
	case 0xcd, 0xd1: // uint16, int16
		return shape{n: 2}, true
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return shape{n: 4}, true
	case 0xcb, mpUint64, mpInt64: // float64, uint64, int64
		return shape{n: 8}, true
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1..16, plus the type byte
		return shape{n: 1 << (c - 0xd4), extra: 1}, true
	case mpArray16, mpArray32:
		return shape{kind: kindArray, lenSize: 2 << (c - mpArray16)}, true
	case mpMap16, mpMap32:
		return shape{kind: kindMap, lenSize: 2 << (c - mpMap16)}, true
	}
	return shape{}, false
}

// fits checks that a value of shape kind k declaring n (bytes, elements
// or pairs) fits in left bytes: every element takes at least one byte,
// every pair two.
func fits(k kind, n, left int) error {
	if k == kindMap {
		if n > left/2 {
			return fmt.Errorf("%w: map declares %d pairs, %d bytes left", ErrMalformed, n, left)
		}
		return nil
	}
	if n > left {
		return fmt.Errorf("%w: %d bytes or elements declared, %d bytes left", ErrMalformed, n, left)
	}
	return nil
}

// Reader reads msgpack values from a byte slice, checking every declared
// length against the bytes left (see above). The zero Reader is empty.
// Byte slices a Reader returns alias its input.
type Reader struct{ b []byte }

// NewReader returns a Reader of b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// Len returns the number of bytes left.
func (r *Reader) Len() int { return len(r.b) }

// errShort is returned for input that ends inside a value.
var errShort = malformed("unexpected end of input")

func (r *Reader) byte() (byte, error) {
	if len(r.b) == 0 {
		return 0, errShort
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, nil
}

// take returns the next n bytes.
func (r *Reader) take(n int) ([]byte, error) {
	if n < 0 || len(r.b) < n {
		return nil, errShort
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p, nil
}

// be reads a big-endian unsigned integer of size bytes (1, 2, 4 or 8).
func (r *Reader) be(size int) (uint64, error) {
	p, err := r.take(size)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range p {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// Nil consumes a nil and reports true if the next value is one.
func (r *Reader) Nil() bool {
	if len(r.b) > 0 && r.b[0] == mpNil {
		r.b = r.b[1:]
		return true
	}
	return false
}

// head reads the header of the next value: its kind and its payload
// length, element or pair count, checked against the bytes left. For
// kindBytes the ext type byte counts in n.
func (r *Reader) head() (kind, int, error) {
	c, err := r.byte()
	if err != nil {
		return 0, 0, err
	}
	s, ok := shapeOf(c)
	if !ok {
		return 0, 0, fmt.Errorf("%w: invalid code 0x%02x", ErrMalformed, c)
	}
	n := s.n
	if s.lenSize > 0 {
		v, err := r.be(s.lenSize)
		if err != nil {
			return 0, 0, err
		}
		n = int(min(v, math.MaxInt32)) // a u32 length fits an int anywhere
	}
	n += s.extra
	return s.kind, n, fits(s.kind, n, len(r.b))
}

// Container reads the header of an array or map: its element (pair) count
// and whether it is a map. If the next value is neither, it reads nothing
// and ok is false.
func (r *Reader) Container() (n int, isMap, ok bool, err error) {
	if len(r.b) == 0 {
		return 0, false, false, errShort
	}
	if s, valid := shapeOf(r.b[0]); !valid || s.kind == kindBytes {
		return 0, false, false, nil
	}
	k, n, err := r.head()
	return n, k == kindMap, true, err
}

// collLen reads the header of a container of kind want; nil gives -1.
func (r *Reader) collLen(want kind, what string) (int, error) {
	if r.Nil() {
		return -1, nil
	}
	n, isMap, ok, err := r.Container()
	if err != nil {
		return 0, err
	}
	if !ok || isMap != (want == kindMap) {
		return 0, malformed("expected " + what)
	}
	return n, nil
}

// ArrayLen reads an array header: the number of elements, or -1 for nil.
func (r *Reader) ArrayLen() (int, error) { return r.collLen(kindArray, "an array") }

// MapLen reads a map header: the number of key-value pairs, or -1 for nil.
func (r *Reader) MapLen() (int, error) { return r.collLen(kindMap, "a map") }

// MapFields reads a map whose keys are strs (nil reads as an empty map),
// calling field with each key in order: field reads the key's value, or
// skips it with [Reader.Skip]. It stops at the first error, of the map or
// of field.
func (r *Reader) MapFields(field func(key string) error) error {
	n, err := r.MapLen()
	if err != nil {
		return err
	}
	for range n {
		key, err := r.Str()
		if err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
	}
	return nil
}

// Skip reads and drops one value of any type, nested at most [MaxDepth]
// deep.
func (r *Reader) Skip() error { return r.skip(0) }

func (r *Reader) skip(depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrMalformed, MaxDepth)
	}
	k, n, err := r.head()
	if err != nil {
		return err
	}
	switch k {
	case kindBytes:
		_, err = r.take(n)
		return err
	case kindMap:
		n *= 2
	}
	for range n {
		if err := r.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// sized reads the length after a str8/16/32 or bin8/16/32 code c and the
// payload it declares.
func (r *Reader) sized(c byte) ([]byte, error) {
	s, _ := shapeOf(c)
	n, err := r.be(s.lenSize)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.b)) {
		return nil, fmt.Errorf("%w: item of %d bytes, %d left", ErrMalformed, n, len(r.b))
	}
	return r.take(int(n))
}

// StrBytes reads a str and returns its bytes.
func (r *Reader) StrBytes() ([]byte, error) {
	c, err := r.byte()
	if err != nil {
		return nil, err
	}
	switch {
	case c&0xe0 == 0xa0:
		return r.take(int(c & 0x1f))
	case c == mpStr8, c == mpStr16, c == mpStr32:
		return r.sized(c)
	}
	return nil, fmt.Errorf("%w: expected a string, got code 0x%02x", ErrMalformed, c)
}

// Str reads a str as a string (a copy).
func (r *Reader) Str() (string, error) {
	p, err := r.StrBytes()
	return string(p), err
}

// Bin reads a bin and returns its bytes.
func (r *Reader) Bin() ([]byte, error) {
	c, err := r.byte()
	if err != nil {
		return nil, err
	}
	if c != mpBin8 && c != mpBin16 && c != mpBin32 {
		return nil, fmt.Errorf("%w: expected binary data, got code 0x%02x", ErrMalformed, c)
	}
	return r.sized(c)
}

// Bytes reads a bin, a str or nil (which gives nil), as written for a
// []byte by msgpack encoders in their different modes.
func (r *Reader) Bytes() ([]byte, error) {
	if r.Nil() {
		return nil, nil
	}
	if len(r.b) > 0 && (r.b[0] == mpBin8 || r.b[0] == mpBin16 || r.b[0] == mpBin32) {
		return r.Bin()
	}
	return r.StrBytes()
}

// Bool reads a bool.
func (r *Reader) Bool() (bool, error) {
	c, err := r.byte()
	if err != nil {
		return false, err
	}
	switch c {
	case mpFalse:
		return false, nil
	case mpTrue:
		return true, nil
	}
	return false, malformed("expected a bool")
}

// Uint reads a non-negative integer in any of msgpack's integer encodings
// (a signed one too, as other encoders write small values). nil, negative
// numbers, floats and other types are errors.
func (r *Reader) Uint() (uint64, error) {
	c, err := r.byte()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= 0x7f:
		return uint64(c), nil
	case c >= mpUint8 && c <= mpUint64:
		return r.be(1 << (c - mpUint8))
	case c >= mpInt8 && c <= mpInt64:
		size := 1 << (c - mpInt8)
		v, err := r.be(size)
		if err == nil && v>>(8*size-1) != 0 {
			err = malformed("negative value where an unsigned integer is expected")
		}
		return v, err
	}
	return 0, fmt.Errorf("%w: expected an integer, got code 0x%02x", ErrMalformed, c)
}

// Int reads an integer in any of msgpack's integer encodings that fits an
// int64. nil, floats and other types are errors.
func (r *Reader) Int() (int64, error) {
	if len(r.b) == 0 {
		return 0, errShort
	}
	c := r.b[0]
	switch {
	case c >= 0xe0: // negative fixint
		r.b = r.b[1:]
		return int64(int8(c)), nil
	case c >= mpInt8 && c <= mpInt64:
		r.b = r.b[1:]
		size := 1 << (c - mpInt8)
		v, err := r.be(size)
		shift := 64 - 8*size
		return int64(v<<shift) >> shift, err // sign-extend
	}
	v, err := r.Uint()
	if err == nil && v > math.MaxInt64 {
		err = malformed("integer out of range")
	}
	return int64(v), err
}

// ---- encoding ----

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, mpUint8, byte(v))
	case v <= math.MaxUint16:
		return append(b, 0xcd, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, mpUint64), v)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, mpTrue)
	}
	return append(b, mpFalse)
}

// AppendStr appends s as a msgpack str (fixstr, str8, str16 or str32,
// the shortest that fits). Hand-written codecs of this module share it.
func AppendStr(b []byte, s string) []byte {
	if n := len(s); n <= 31 {
		b = append(b, 0xa0|byte(n))
	} else {
		b = appendLen(b, n, mpStr8, mpStr16, mpStr32)
	}
	return append(b, s...)
}

// AppendBin appends d as a msgpack bin (bin8, bin16 or bin32, the
// shortest that fits).
func AppendBin(b []byte, d []byte) []byte {
	return append(appendLen(b, len(d), mpBin8, mpBin16, mpBin32), d...)
}

// appendLen appends the type byte and big-endian length of a str or bin
// of n bytes: t8, t16 or t32, the shortest that holds n.
func appendLen(b []byte, n int, t8, t16, t32 byte) []byte {
	switch {
	case n <= math.MaxUint8:
		return append(b, t8, byte(n))
	case n <= math.MaxUint16:
		return append(b, t16, byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint32(append(b, t32), uint32(n))
}

func appendMapHeader(b []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return append(b, mpMap16, byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint32(append(b, mpMap32), uint32(n))
}
