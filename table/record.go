package table

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// opcode names a mutation. Its values are written to disk: append new ones,
// never renumber.
type opcode uint8

const (
	opSet   opcode = 1 // key, value
	opSSet  opcode = 2 // key, member
	opSDel  opcode = 3 // key, member
	opHSet  opcode = 4 // key, field, value
	opHDel  opcode = 5 // key, field
	opDel   opcode = 6 // key
	opClear opcode = 7 // no arguments
)

// String returns the operation's name as the API spells it.
func (o opcode) String() string {
	switch o {
	case opSet:
		return "set"
	case opSSet:
		return "sset"
	case opSDel:
		return "sdel"
	case opHSet:
		return "hset"
	case opHDel:
		return "hdel"
	case opDel:
		return "del"
	case opClear:
		return "clear"
	case opGet:
		return "get"
	case opSMember:
		return "smember"
	case opHGet:
		return "hget"
	}
	return fmt.Sprintf("op%d", uint8(o))
}

// Read operations, named in type errors only; never written to disk.
const (
	opGet opcode = 100 + iota
	opSMember
	opHGet
)

// fieldCount is how many length-prefixed fields follow each opcode.
func fieldCount(o opcode) (int, bool) {
	switch o {
	case opSet, opSSet, opSDel, opHDel:
		return 2, true
	case opHSet:
		return 3, true
	case opDel:
		return 1, true
	case opClear:
		return 0, true
	}
	return 0, false
}

// record is one mutation. key, sub (member or field) and val are used as
// the opcode needs them.
type record struct {
	op  opcode
	key string
	sub string
	val []byte
}

// Record framing: a 4-byte little-endian body length, the body's CRC-32C
// (Castagnoli), then the body: the opcode byte and each field as a uvarint
// length followed by its bytes.
const frameHeader = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadRecord marks a record that fails its checks; readers stop there.
var errBadRecord = errors.New("bad record")

// appendRecord appends r's framed encoding to dst.
func appendRecord(dst []byte, r *record) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, byte(r.op))
	n, _ := fieldCount(r.op)
	if n >= 1 {
		dst = appendField(dst, r.key)
	}
	switch r.op {
	case opSet:
		dst = appendField(dst, r.val)
	case opSSet, opSDel, opHDel:
		dst = appendField(dst, r.sub)
	case opHSet:
		dst = appendField(dst, r.sub)
		dst = appendField(dst, r.val)
	}
	body := dst[start+frameHeader:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(body, castagnoli))
	return dst
}

func appendField[T string | []byte](dst []byte, f T) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(f)))
	return append(dst, f...)
}

// decodeBody decodes a record body whose CRC has been checked. Strings are
// copied; val aliases body, which the caller must not reuse.
func decodeBody(body []byte) (record, error) {
	if len(body) == 0 {
		return record{}, fmt.Errorf("%w: empty body", errBadRecord)
	}
	r := record{op: opcode(body[0])}
	n, ok := fieldCount(r.op)
	if !ok {
		return record{}, fmt.Errorf("%w: unknown opcode %d", errBadRecord, body[0])
	}
	rest := body[1:]
	var fields [3][]byte
	for i := range n {
		l, k := binary.Uvarint(rest)
		if k <= 0 || l > uint64(len(rest)-k) {
			return record{}, fmt.Errorf("%w: field %d overruns the body", errBadRecord, i)
		}
		fields[i] = rest[k : k+int(l) : k+int(l)]
		rest = rest[k+int(l):]
	}
	if len(rest) != 0 {
		return record{}, fmt.Errorf("%w: %d trailing bytes", errBadRecord, len(rest))
	}
	r.key = string(fields[0])
	switch r.op {
	case opSet:
		r.val = fields[1]
	case opSSet, opSDel, opHDel:
		r.sub = string(fields[1])
	case opHSet:
		r.sub = string(fields[1])
		r.val = fields[2]
	}
	return r, nil
}

// recordReader reads framed records from a stream, allocating only as
// many bytes as the stream actually holds: a length field claiming more
// than the bytes left (limit, when known) is rejected before any
// allocation, and a body is read in bounded chunks so a lying length in a
// stream of unknown size costs at most what the stream delivers.
type recordReader struct {
	r      io.Reader
	limit  int64 // bytes left in the stream, or -1 if unknown
	offset int64 // bytes consumed by complete, valid records
}

// chunk bounds each step of a body read.
const chunk = 64 << 10

// next returns the next record. It returns io.EOF at a clean end, an
// error wrapping errBadRecord (and io.ErrUnexpectedEOF when torn) at a
// torn or corrupt record, and an error wrapping the reader's own at any
// other read failure, which says nothing about the record; offset then
// still marks the end of the last good one.
func (rr *recordReader) next() (record, error) {
	var hdr [frameHeader]byte
	n, err := io.ReadFull(rr.r, hdr[:])
	if err == io.EOF {
		return record{}, io.EOF
	}
	if err != nil {
		if err != io.ErrUnexpectedEOF {
			return record{}, fmt.Errorf("table: reading a record: %w", err)
		}
		return record{}, fmt.Errorf("%w: torn header after %d bytes: %w", errBadRecord, n, err)
	}
	size := int64(binary.LittleEndian.Uint32(hdr[:4]))
	if size == 0 || (rr.limit >= 0 && size > rr.limit-frameHeader) {
		return record{}, fmt.Errorf("%w: length %d exceeds the %d bytes left", errBadRecord, size, rr.limit-frameHeader)
	}
	body, err := readBounded(rr.r, size)
	if err != nil {
		if err != io.ErrUnexpectedEOF {
			return record{}, fmt.Errorf("table: reading a record: %w", err)
		}
		return record{}, fmt.Errorf("%w: torn body: %w", errBadRecord, err)
	}
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
		return record{}, fmt.Errorf("%w: checksum mismatch", errBadRecord)
	}
	rec, err := decodeBody(body)
	if err != nil {
		return record{}, err
	}
	rr.offset += frameHeader + size
	if rr.limit >= 0 {
		rr.limit -= frameHeader + size
	}
	return rec, nil
}

// readBounded reads exactly size bytes, growing its buffer chunk by chunk.
func readBounded(r io.Reader, size int64) ([]byte, error) {
	buf := make([]byte, 0, min(size, chunk))
	for int64(len(buf)) < size {
		step := int(min(size-int64(len(buf)), chunk))
		buf = append(buf, make([]byte, step)...)
		if _, err := io.ReadFull(r, buf[len(buf)-step:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}
