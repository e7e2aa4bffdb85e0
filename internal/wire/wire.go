package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/notp-go/notp"
)

// Version is the kernel protocol version carried in the hello.
// Append-only: a new incompatible protocol gets a new number.
//
//	1: both sides sent their proofs at once, keyed by the raw cookie (retired:
//	   the acceptor proved before the dialer did)
//	2: the dialer proves first; keys come from the argon2id-stretched cookie;
//	   under TLS the transcript binds the TLS channel
const Version = 2

// MinVersion is the oldest protocol version this code speaks. A hello
// offers the range [MinVersion, Version]; two nodes talk when their
// ranges overlap, at the highest version both speak. A release that
// brings version n+1 keeps MinVersion at n, so it talks to the previous
// release during a rolling upgrade; the release after may raise it.
const MinVersion = 2

// ProtoKernel is the protocol byte of kernel connections.
const ProtoKernel byte = 'K'

// Envelope kinds. Append-only: never renumber or reuse a value.
const (
	KindMsg   byte = 1 // a cast or call to a registered name
	KindReply byte = 2 // a reply (or reply chunk) to a tag
	KindPing  byte = 3 // a kernel-level ping; Tag is the reply tag
	KindPong  byte = 4 // the answer to a ping; ID is the tag
	// KindCredit is reply-stream flow control, sent by the caller to the
	// replier: ID is the reply tag, Data the number of further chunks
	// granted (u32be, see AppendCredit); an Err cancels the stream.
	KindCredit byte = 5
	kindMax    byte = 5
)

// StreamWindow is the number of chunks a reply stream's sender may send
// before it waits for credit: every multi-chunk reply stream starts with
// this credit, and the receiver grants more as it consumes chunks.
const StreamWindow = 16

// AppendCredit appends the Data of a KindCredit envelope granting n chunks.
func AppendCredit(b []byte, n uint32) []byte { return binary.BigEndian.AppendUint32(b, n) }

// ParseCredit returns the number of chunks granted by a KindCredit
// envelope's Data.
func ParseCredit(d []byte) (uint32, error) {
	if len(d) != 4 {
		return 0, malformed("credit is not 4 bytes")
	}
	return binary.BigEndian.Uint32(d), nil
}

// Hello flags. Append-only.
const (
	FlagInsecure uint64 = 1 // the sender runs without a cookie
)

// Sizes of the fixed parts.
const (
	NonceSize  = 32
	MACSize    = 32
	HeaderSize = 4
	// MaxHelloSize bounds a hello frame.
	MaxHelloSize = 4096
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("wire: malformed input")

// Error is a remote error on the wire.
type Error struct {
	Code    string
	Message string
	Fields  map[string]string
}

// Stream is the stream part of an envelope.
type Stream struct {
	ID   string
	Done bool
}

// Envelope is one message on the wire.
type Envelope struct {
	Kind   byte
	ID     string
	Tag    string
	Stream *Stream
	Err    *Error
	Data   []byte
}

// Hello is the first frame of each direction of a kernel connection.
type Hello struct {
	// Version is the newest protocol version the sender speaks and
	// MinVersion the oldest: the sender's range. A hello without the
	// range's fifth element (the first releases of version 2) stands for
	// [Version, Version], as does MinVersion 0 when encoding.
	Version    uint64
	MinVersion uint64
	Flags      uint64
	Node       notp.Node
	Nonce      []byte
}

// Min is the oldest version h offers: MinVersion, or Version when
// MinVersion is 0 (a hello that offers one version).
func (h *Hello) Min() uint64 {
	if h.MinVersion == 0 {
		return h.Version
	}
	return h.MinVersion
}

func malformed(what string) error { return fmt.Errorf("%w: %s", ErrMalformed, what) }

// AppendFrame appends a length-prefixed envelope to b.
func AppendFrame(b []byte, e *Envelope) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b = AppendEnvelope(b, e)
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-HeaderSize))
	return b
}

// AppendEnvelope appends the msgpack encoding of e to b.
func AppendEnvelope(b []byte, e *Envelope) []byte {
	b = append(b, 0x96)
	b = appendUint(b, uint64(e.Kind))
	b = AppendStr(b, e.ID)
	b = AppendStr(b, e.Tag)
	if e.Stream == nil {
		b = append(b, 0xc0)
	} else {
		b = append(b, 0x92)
		b = AppendStr(b, e.Stream.ID)
		b = appendBool(b, e.Stream.Done)
	}
	if e.Err == nil {
		b = append(b, 0xc0)
	} else {
		b = append(b, 0x93)
		b = AppendStr(b, e.Err.Code)
		b = AppendStr(b, e.Err.Message)
		if e.Err.Fields == nil {
			b = append(b, 0xc0)
		} else {
			b = appendMapHeader(b, len(e.Err.Fields))
			for k, v := range e.Err.Fields {
				b = AppendStr(b, k)
				b = AppendStr(b, v)
			}
		}
	}
	if e.Data == nil {
		b = append(b, 0xc0)
	} else {
		b = AppendBin(b, e.Data)
	}
	return b
}

// DecodeEnvelope decodes one envelope that fills b exactly. Strings and
// Data are copied: e does not alias b. e is overwritten.
func DecodeEnvelope(b []byte, e *Envelope) error {
	return DecodeEnvelopeWith(b, e, nil)
}

// DecodeEnvelopeWith is DecodeEnvelope, except that the ID of a KindMsg
// envelope (a registered name, repeated message after message) comes from
// name when name is not nil: name returns a string equal to its argument,
// typically a cached one, so that decoding allocates no new string for it.
// name must not keep its argument.
func DecodeEnvelopeWith(b []byte, e *Envelope, name func([]byte) string) error {
	r := NewReader(b)
	kind, err := readEnvelopeHead(&r)
	if err != nil {
		return err
	}
	*e = Envelope{Kind: kind}
	var p envelopeBytes
	if p.id, err = r.StrBytes(); err != nil {
		return err
	}
	if p.tag, err = r.StrBytes(); err != nil {
		return err
	}
	if e.Stream, err = readStream(&r); err != nil {
		return err
	}
	if e.Err, err = readError(&r); err != nil {
		return err
	}
	if p.data, p.hasData, err = readData(&r); err != nil {
		return err
	}
	if r.Len() != 0 {
		return malformed("trailing bytes after envelope")
	}
	p.store(e, name)
	return nil
}

// readEnvelopeHead reads the array header of an envelope and its kind.
func readEnvelopeHead(r *Reader) (byte, error) {
	n, err := r.ArrayLen()
	if err != nil {
		return 0, err
	}
	if n != 6 {
		return 0, malformed("envelope is not a 6-element array")
	}
	kind, err := r.Uint()
	if err != nil {
		return 0, err
	}
	if kind == 0 || kind > uint64(kindMax) {
		return 0, malformed("unknown envelope kind")
	}
	return byte(kind), nil
}

// readTuple reads the head of an optional part of an envelope: nil (not
// present) or an array of exactly n elements, which the caller then
// reads. It reports whether the part is present and well-formed so far.
func readTuple(r *Reader, what string, n int) (bool, error) {
	if r.Nil() {
		return false, nil
	}
	got, err := r.ArrayLen()
	if err != nil {
		return false, err
	}
	if got != n {
		return false, malformed(fmt.Sprintf("%s is not a %d-element array", what, n))
	}
	return true, nil
}

// readStream reads the stream part of an envelope: nil or [id, done].
func readStream(r *Reader) (*Stream, error) {
	present, err := readTuple(r, "stream", 2)
	if !present {
		return nil, err
	}
	s := &Stream{}
	if s.ID, err = r.Str(); err != nil {
		return nil, err
	}
	if s.Done, err = r.Bool(); err != nil {
		return nil, err
	}
	return s, nil
}

// readError reads the err part of an envelope: nil or [code, message,
// fields].
func readError(r *Reader) (*Error, error) {
	present, err := readTuple(r, "error", 3)
	if !present {
		return nil, err
	}
	e := &Error{}
	if e.Code, err = r.Str(); err != nil {
		return nil, err
	}
	if e.Message, err = r.Str(); err != nil {
		return nil, err
	}
	if e.Fields, err = readFields(r); err != nil {
		return nil, err
	}
	return e, nil
}

// readFields reads the fields of an error: nil or a map of strs.
func readFields(r *Reader) (map[string]string, error) {
	m, err := r.MapLen()
	if err != nil || m < 0 {
		return nil, err
	}
	fields := make(map[string]string, m) // m is checked against the input
	for range m {
		k, err := r.Str()
		if err != nil {
			return nil, err
		}
		v, err := r.Str()
		if err != nil {
			return nil, err
		}
		fields[k] = v
	}
	return fields, nil
}

// readData reads the data part of an envelope: nil or a bin. ok is false
// for nil.
func readData(r *Reader) (data []byte, ok bool, err error) {
	if r.Nil() {
		return nil, false, nil
	}
	data, err = r.Bin()
	return data, err == nil, err
}

// envelopeBytes are the ID, Tag and Data of an envelope as read: slices of
// the input, copied by store.
type envelopeBytes struct {
	id, tag, data []byte
	hasData       bool // data was a bin, not nil
}

// store copies p into e so that e does not alias the input. The ID
// (unless name interns it), Tag and Data of a small envelope share one
// allocation: the common call and reply cost one, not three.
func (p *envelopeBytes) store(e *Envelope, name func([]byte) string) {
	id, data := p.id, p.data
	interned := name != nil && e.Kind == KindMsg
	if interned {
		e.ID = name(id)
		id = nil
	}
	if len(data) > maxSharedData {
		// A large payload gets its own allocation, so that keeping a
		// tag (a deferred reply's From) does not pin it.
		e.Data = append(make([]byte, 0, len(data)), data...)
		data = nil
	}
	n := len(id) + len(p.tag) + len(data)
	if n == 0 && !(p.hasData && e.Data == nil) {
		return
	}
	buf := make([]byte, 0, n)
	buf = append(append(append(buf, id...), p.tag...), data...)
	if !interned {
		e.ID = unsafe.String(unsafe.SliceData(buf), len(id))
	}
	if len(p.tag) > 0 {
		e.Tag = unsafe.String(&buf[len(id)], len(p.tag))
	}
	if p.hasData && e.Data == nil {
		// Full slice expression: appending to Data never reaches past
		// the buffer (there is nothing after it anyway).
		e.Data = buf[len(id)+len(p.tag) : n : n]
	}
}

// maxSharedData is the largest Data that DecodeEnvelopeWith places in one
// allocation with the envelope's strings.
const maxSharedData = 4 << 10

// AppendHello appends a length-prefixed hello frame to b.
func AppendHello(b []byte, h *Hello) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0x95)
	b = appendUint(b, h.Version)
	b = appendUint(b, h.Flags)
	b = append(b, 0x93)
	b = AppendStr(b, h.Node.ID)
	b = AppendStr(b, h.Node.Host)
	b = appendUint(b, uint64(h.Node.Port))
	b = AppendBin(b, h.Nonce)
	b = appendUint(b, h.Min())
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-HeaderSize))
	return b
}

// DecodeHello decodes a hello body (without its length prefix).
func DecodeHello(b []byte, h *Hello) error {
	r := NewReader(b)
	n, err := r.ArrayLen()
	if err != nil {
		return err
	}
	if n != 4 && n != 5 {
		return malformed("hello is not a 4- or 5-element array")
	}
	elems := n
	*h = Hello{}
	if h.Version, err = r.Uint(); err != nil {
		return err
	}
	if h.Flags, err = r.Uint(); err != nil {
		return err
	}
	if h.Version == 0 {
		return malformed("protocol version 0") // versions start at 1
	}
	if n, err = r.ArrayLen(); err != nil {
		return err
	}
	if n != 3 {
		return malformed("node is not a 3-element array")
	}
	if h.Node.ID, err = r.Str(); err != nil {
		return err
	}
	if h.Node.Host, err = r.Str(); err != nil {
		return err
	}
	port, err := r.Uint()
	if err != nil {
		return err
	}
	if port > notp.MaxPort {
		return malformed("port out of range")
	}
	h.Node.Port = int(port)
	nonce, err := r.Bin()
	if err != nil {
		return err
	}
	if len(nonce) != NonceSize {
		return malformed("nonce has the wrong size")
	}
	h.Nonce = append([]byte(nil), nonce...)
	h.MinVersion = h.Version
	if elems == 5 {
		if h.MinVersion, err = r.Uint(); err != nil {
			return err
		}
		if h.MinVersion == 0 || h.MinVersion > h.Version {
			return malformed("protocol version range is empty")
		}
	}
	if r.Len() != 0 {
		return malformed("trailing bytes after hello")
	}
	if h.Node.ID == "" {
		return malformed("hello without node id")
	}
	return nil
}

// SplitFrames calls fn for each length-prefixed frame of a record payload,
// in order. It stops at the first error of fn. A frame longer than max or a
// truncated frame is an error wrapping ErrMalformed (or ErrTooLarge).
func SplitFrames(p []byte, max int, fn func(frame []byte) error) error {
	for len(p) > 0 {
		if len(p) < HeaderSize {
			return malformed("truncated frame header")
		}
		n := binary.BigEndian.Uint32(p)
		if uint64(n) > uint64(max) {
			return ErrTooLarge
		}
		p = p[HeaderSize:]
		if uint64(len(p)) < uint64(n) {
			return malformed("truncated frame")
		}
		if err := fn(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// ErrTooLarge reports a frame or record over the size limit.
var ErrTooLarge = errors.New("wire: frame too large")
