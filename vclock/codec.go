package vclock

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp/internal/wire"
)

// ErrInvalidClock is wrapped by every decoding error: input that is not a
// map of non-empty, distinct ids to {count, insert, time} objects with
// non-negative integer fields.
var ErrInvalidClock = errors.New("vclock: invalid clock encoding")

// Both encodings are the map notp uses, in ascending id order so that equal
// clocks encode to equal bytes:
//
//	{"<id>": {"count": <uint64>, "insert": <µs>, "time": <µs>}, ...}
//
// Decoders require all three fields in every entry and ignore unknown fields,
// so a later version may add fields without breaking older readers.
const (
	fieldCount  = "count"
	fieldInsert = "insert"
	fieldTime   = "time"
)

// Compile-time checks that Clock implements the codec interfaces.
var (
	_ msgpack.CustomEncoder = (*Clock)(nil)
	_ msgpack.CustomDecoder = (*Clock)(nil)
	_ json.Marshaler        = (*Clock)(nil)
	_ json.Unmarshaler      = (*Clock)(nil)
)

// invalid returns an error wrapping ErrInvalidClock.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidClock, fmt.Sprintf(format, args...))
}

// replace swaps in freshly decoded entries; nothing is shared with the input.
func (c *Clock) replace(entries map[string]Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = entries
}

// EncodeMsgpack implements [msgpack.CustomEncoder]: the clock is written as a
// msgpack map in ascending id order.
func (c *Clock) EncodeMsgpack(enc *msgpack.Encoder) error {
	ids, entries := c.snapshot()
	if err := enc.EncodeMapLen(len(ids)); err != nil {
		return err
	}
	for i, id := range ids {
		e := entries[i]
		for _, err := range []error{
			enc.EncodeString(id),
			enc.EncodeMapLen(3),
			enc.EncodeString(fieldCount), enc.EncodeUint(e.Count),
			enc.EncodeString(fieldInsert), enc.EncodeInt(e.Insert),
			enc.EncodeString(fieldTime), enc.EncodeInt(e.Time),
		} {
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// DecodeMsgpack implements [msgpack.CustomDecoder]. It validates the whole
// input before replacing c's entries, so on error c is unchanged. Errors wrap
// [ErrInvalidClock]. A msgpack nil is rejected here, but note that
// [msgpack.Unmarshal] handles a top-level nil itself, without calling
// DecodeMsgpack, by zeroing the target (which leaves an empty clock reading
// [time.Now]).
//
// Decoding trusts no declared length: the value's bytes are read off the
// decoder with wire.ReadValue and decoded with a wire.Reader, which reject a
// str, bin, ext, array or map that declares more than the input left
// before anything is allocated for it, so decoding n bytes allocates a
// small multiple of n, whatever the input declares.
func (c *Clock) DecodeMsgpack(dec *msgpack.Decoder) error {
	b, err := wire.ReadValue(dec)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidClock, err)
	}
	rd := wire.NewReader(b)
	r := &rd
	n, err := r.MapLen()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidClock, err)
	}
	if n < 0 {
		return invalid("nil, want a map")
	}
	entries := make(map[string]Entry, min(n, 8)) // n is untrusted
	for range n {
		id, err := r.Str()
		if err != nil {
			return fmt.Errorf("%w: id: %w", ErrInvalidClock, err)
		}
		if err := addEntry(entries, id, func() (Entry, error) { return decodeMsgpackEntry(r) }); err != nil {
			return err
		}
	}
	c.replace(entries)
	return nil
}

// addEntry checks id (checkID), then reads its entry with decode into
// entries.
func addEntry(entries map[string]Entry, id string, decode func() (Entry, error)) error {
	if err := checkID(entries, id); err != nil {
		return err
	}
	e, err := decode()
	if err != nil {
		return fmt.Errorf("%w: entry %q: %w", ErrInvalidClock, id, err)
	}
	entries[id] = e
	return nil
}

// checkID rejects empty and repeated ids.
func checkID(entries map[string]Entry, id string) error {
	if id == "" {
		return invalid("empty id")
	}
	if _, dup := entries[id]; dup {
		return invalid("duplicate id %q", id)
	}
	return nil
}

// fieldSet tracks which entry fields have been seen.
type fieldSet uint8

// see records field name, failing if it was seen before.
func (s *fieldSet) see(name string) error {
	var bit fieldSet
	switch name {
	case fieldCount:
		bit = 1
	case fieldInsert:
		bit = 2
	case fieldTime:
		bit = 4
	}
	if *s&bit != 0 {
		return fmt.Errorf("duplicate field %q", name)
	}
	*s |= bit
	return nil
}

// complete fails unless all three fields were seen.
func (s fieldSet) complete() error {
	if s != 7 {
		return errors.New("want fields count, insert and time")
	}
	return nil
}

// decodeMsgpackEntry reads one {count, insert, time} map.
func decodeMsgpackEntry(r *wire.Reader) (Entry, error) {
	var e Entry
	n, err := r.MapLen()
	if err != nil {
		return e, err
	}
	if n < 0 {
		return e, errors.New("nil, want a map")
	}
	var seen fieldSet
	read := func(limit uint64) (uint64, error) { return msgpackUint(r, limit) }
	for range n {
		name, err := r.Str()
		if err != nil {
			return e, err
		}
		known, err := readEntryField(&e, &seen, name, read)
		if err != nil {
			return e, err
		}
		if !known {
			if err := r.Skip(); err != nil {
				return e, err
			}
		}
	}
	return e, seen.complete()
}

// readEntryField reads the value of the entry field name into e with read
// (which reads an integer in [0, limit]) and marks it seen. It reports
// false, reading nothing, for a name that is not one of Entry's fields:
// the caller skips the value.
func readEntryField(e *Entry, seen *fieldSet, name string, read func(limit uint64) (uint64, error)) (bool, error) {
	var n uint64
	var err error
	switch name {
	case fieldCount:
		n, err = read(math.MaxUint64)
		e.Count = n
	case fieldInsert:
		n, err = read(math.MaxInt64) // a microsecond time
		e.Insert = int64(n)
	case fieldTime:
		n, err = read(math.MaxInt64)
		e.Time = int64(n)
	default:
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("%s: %w", name, err)
	}
	return true, seen.see(name)
}

// msgpackUint reads an integer in [0, limit].
func msgpackUint(r *wire.Reader, limit uint64) (uint64, error) {
	n, err := r.Uint()
	if err == nil && n > limit {
		err = fmt.Errorf("value %d out of range", n)
	}
	return n, err
}

// MarshalJSON implements [json.Marshaler]: the clock is written as a JSON
// object in ascending id order. Like encoding/json, it replaces invalid UTF-8
// in ids with U+FFFD.
func (c *Clock) MarshalJSON() ([]byte, error) {
	ids, entries := c.snapshot()
	b := make([]byte, 0, 2+len(ids)*64)
	b = append(b, '{')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		key, err := json.Marshal(id)
		if err != nil {
			return nil, err
		}
		e := entries[i]
		b = append(b, key...)
		b = append(b, `:{"count":`...)
		b = strconv.AppendUint(b, e.Count, 10)
		b = append(b, `,"insert":`...)
		b = strconv.AppendInt(b, e.Insert, 10)
		b = append(b, `,"time":`...)
		b = strconv.AppendInt(b, e.Time, 10)
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// UnmarshalJSON implements [json.Unmarshaler]. It validates the whole input
// (null included, which is rejected) before replacing c's entries, so on
// error c is unchanged. Errors wrap [ErrInvalidClock].
func (c *Clock) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := expectDelim(dec, '{'); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidClock, err)
	}
	entries := make(map[string]Entry)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: id: %w", ErrInvalidClock, err)
		}
		id, _ := tok.(string) // object keys are always strings
		if err := addEntry(entries, id, func() (Entry, error) { return decodeJSONEntry(dec) }); err != nil {
			return err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidClock, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("trailing data after the clock")
	}
	c.replace(entries)
	return nil
}

// expectDelim reads the next token and fails unless it is want.
func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("got %v, want %v", tok, want)
	}
	return nil
}

// decodeJSONEntry reads one {count, insert, time} object.
func decodeJSONEntry(dec *json.Decoder) (Entry, error) {
	var e Entry
	if err := expectDelim(dec, '{'); err != nil {
		return e, err
	}
	var seen fieldSet
	read := func(limit uint64) (uint64, error) { return jsonUint(dec, limit) }
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return e, err
		}
		name, _ := tok.(string)
		known, err := readEntryField(&e, &seen, name, read)
		if err != nil {
			return e, err
		}
		if !known {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return e, err
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return e, err
	}
	return e, seen.complete()
}

// jsonUint reads a JSON number written as a plain integer in [0, limit].
func jsonUint(dec *json.Decoder, limit uint64) (uint64, error) {
	tok, err := dec.Token()
	if err != nil {
		return 0, err
	}
	num, ok := tok.(json.Number)
	if !ok {
		return 0, fmt.Errorf("got %v, want a non-negative integer", tok)
	}
	n, err := strconv.ParseUint(string(num), 10, 64)
	if err != nil || n > limit {
		return 0, fmt.Errorf("%s is not an integer in [0, %d]", num, limit)
	}
	return n, nil
}
