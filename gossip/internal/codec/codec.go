// Package codec is gossip's wire and flush-file format: the ring messages
// and the persisted state, their entries, and their decoders, which check
// every declared length against the input left and validate what they
// decode within the limits a node may hold.
//
// It imports neither memberlist nor the kernel nor gossip, so its fuzz
// targets (FuzzDecodeMessage, FuzzDecodeFile) link little and run fast:
// Go's fuzzer scans the coverage counters of everything a test binary
// links on every execution.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/msgpackcheck"
	"github.com/notp-go/notp/vclock"
)

// Limits applied to every decoded state (gossip exports them under the
// same names, and applies them to local operations too).
const (
	// MaxWeight is the largest weight (tokens) a node may have.
	MaxWeight = 4096
	// MaxNodes is the largest number of entries (live and removed) a
	// state may hold.
	MaxNodes = 10000
	// MaxRingIDLen is the longest ring id, in bytes.
	MaxRingIDLen = 200
	// MaxRound bounds the round of a received message (ceil(log2 MaxNodes) = 14).
	MaxRound = 64
	// MaxVersion is the largest entry version and clock count a decoded
	// state may carry: 2^53, the largest integer a JSON (JavaScript) peer
	// or tool represents exactly.
	MaxVersion = 1 << 53
	// MaxIDLen is the longest node ID (and writer ID) an entry may carry,
	// in bytes, and MaxHostLen the longest host (a DNS name's limit):
	// a state of MaxNodes entries then encodes to under 8 MB, within a
	// kernel message, a flush file and memberlist's push/pull.
	MaxIDLen   = 128
	MaxHostLen = 253
)

// Entry is one node's slot in the ring state: the last write about that
// node, live or removed (a tombstone).
type Entry struct {
	Node    notp.Node `msgpack:"node"`
	Weight  int       `msgpack:"weight"`
	Version uint64    `msgpack:"version"` // per-entry Lamport counter; 0 = a node's placeholder for itself
	Writer  string    `msgpack:"writer"`  // ID of the node that wrote it
	Removed bool      `msgpack:"removed"` // tombstone
	Time    int64     `msgpack:"time"`    // µs since the Unix epoch, set by the writer
}

// Validate checks an entry's node, IDs, version and weight against the
// limits above.
func (e Entry) Validate() error {
	if err := e.Node.Validate(); err != nil {
		return err
	}
	if len(e.Node.ID) > MaxIDLen || len(e.Node.Host) > MaxHostLen {
		return fmt.Errorf("node %.32q…: id longer than %d bytes or host longer than %d", e.Node.ID, MaxIDLen, MaxHostLen)
	}
	if e.Writer == "" || len(e.Writer) > MaxIDLen {
		return fmt.Errorf("node %q: invalid writer", e.Node.ID)
	}
	if e.Version > MaxVersion {
		return fmt.Errorf("node %q: version %d above 2^53", e.Node.ID, e.Version)
	}
	if e.Weight < 0 || e.Weight > MaxWeight || (!e.Removed && e.Weight == 0) {
		return fmt.Errorf("node %q: weight %d out of range 1..%d", e.Node.ID, e.Weight, MaxWeight)
	}
	return nil
}

// MsgType tags a ring message. Values are append-only.
type MsgType uint8

const (
	// MsgJoin carries the sender's state from Meet: the receiver unions
	// it with its own (every node live on either side stays live), then
	// answers with the merged state.
	MsgJoin MsgType = 1
	// MsgUpdate carries the sender's state; the receiver merges it per
	// entry and forwards its own state with Round-1 while Round > 0.
	MsgUpdate MsgType = 2
	// MsgLeave is MsgUpdate from a leaving node (its own entry removed),
	// sent as a kernel call: the reply acknowledges it.
	MsgLeave MsgType = 3
	// MsgDigest carries only the sender's clock (anti-entropy poll); the
	// receiver answers with MsgUpdate (round 0) if it has changes the
	// sender lacks, and with MsgPull if the sender has changes it lacks.
	MsgDigest MsgType = 4
	// MsgPull asks the receiver for its state (MsgUpdate, round 0).
	MsgPull MsgType = 5
	// MsgSum is the idle poll: only a checksum of the sender's clock
	// counts (Sum). A receiver whose own sum differs answers with its
	// MsgDigest, which the sender answers as usual; equal sums need no
	// answer. In a converged ring each poll costs a few dozen bytes
	// instead of the whole clock.
	MsgSum MsgType = 6
)

// Version is the version of the message and file layouts.
const Version = 1

// Message is a ring message, the payload of a kernel cast (or, for
// MsgLeave, a call) to the handler "gossip/<ring id>".
type Message struct {
	V       int           `msgpack:"v"`
	Type    MsgType       `msgpack:"type"`
	Ring    string        `msgpack:"ring"`
	Round   int           `msgpack:"round"`
	Clock   *vclock.Clock `msgpack:"clock"`
	Entries []Entry       `msgpack:"entries"`
	// Floor (join only): the highest version of the sender's own entry the
	// sender has seen (its leave or removal); the receiver writes the
	// sender's entry above it, so a late tombstone cannot undo the join.
	Floor uint64 `msgpack:"floor,omitempty"`
	// Sum (MsgSum only) is ClockSum of the sender's clock.
	Sum uint64 `msgpack:"sum,omitempty"`
}

// ErrInvalidMessage is wrapped by DecodeMessage errors.
var ErrInvalidMessage = errors.New("gossip: invalid message")

// ErrCorrupt is wrapped by the errors of FileBody and DecodeFile: the
// flush file could not be decoded or is invalid. Package gossip exports it
// under the same name.
var ErrCorrupt = errors.New("gossip: corrupt state file")

// EncodeMessage sets m's version and encodes it.
func EncodeMessage(m *Message) []byte {
	m.V = Version
	return MustEncode(m)
}

// RawMessage is Message with the clock and entries already encoded; it
// encodes to the same bytes.
type RawMessage struct {
	V       int                `msgpack:"v"`
	Type    MsgType            `msgpack:"type"`
	Ring    string             `msgpack:"ring"`
	Round   int                `msgpack:"round"`
	Clock   msgpack.RawMessage `msgpack:"clock"`
	Entries msgpack.RawMessage `msgpack:"entries"`
	Floor   uint64             `msgpack:"floor,omitempty"`
}

// MustEncode encodes v, one of this package's types, a clock or entries,
// whose every field is encodable; it panics only on a programmer's error.
func MustEncode(v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("gossip: encoding: %v", err))
	}
	return b
}

// Smallest valid encodings, the input each declared element must have
// behind it before the decoder allocates for it: an entry as a msgpack
// array ([[id, host, port], weight, version, writer, removed, time] with
// one-byte strings and numbers) and a clock pair (a one-byte id and a map
// of its three named counts).
const (
	minEntrySize      = 13
	minClockEntrySize = 24
)

// StateLimits bound a decoded message or file to what the node may hold:
// MaxNodes entries and clock entries. gossip's state never holds more, so
// whatever it holds, it can send, persist and load.
var StateLimits = msgpackcheck.Limits{Paths: map[string]msgpackcheck.Limit{
	"entries": {MaxLen: MaxNodes, MinElem: minEntrySize},
	"clock":   {MaxLen: MaxNodes, MinElem: minClockEntrySize},
}}

// ValidClock checks a decoded clock's size and counts.
func ValidClock(c *vclock.Clock) error {
	if c.Size() > MaxNodes {
		return fmt.Errorf("clock of %d entries", c.Size())
	}
	for id, e := range c.All() {
		if e.Count > MaxVersion {
			return fmt.Errorf("clock count %d of %q above 2^53", e.Count, id)
		}
	}
	return nil
}

// DecodeMessage decodes and validates a ring message; its errors wrap
// ErrInvalidMessage. It never panics.
func DecodeMessage(b []byte) (*Message, error) {
	var m Message
	if err := msgpackcheck.UnmarshalLimits(b, &m, StateLimits); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if m.V != Version {
		return nil, fmt.Errorf("%w: version %d", ErrInvalidMessage, m.V)
	}
	if err := ValidRingID(m.Ring); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if m.Round < 0 || m.Round > MaxRound {
		return nil, fmt.Errorf("%w: round %d", ErrInvalidMessage, m.Round)
	}
	switch m.Type {
	case MsgJoin, MsgUpdate, MsgLeave:
		if m.Clock == nil {
			return nil, fmt.Errorf("%w: no clock", ErrInvalidMessage)
		}
		if err := ValidEntries(m.Entries); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
		}
	case MsgDigest:
		if m.Clock == nil || len(m.Entries) != 0 {
			return nil, fmt.Errorf("%w: digest with entries or without clock", ErrInvalidMessage)
		}
	case MsgPull:
		if len(m.Entries) != 0 {
			return nil, fmt.Errorf("%w: pull with entries", ErrInvalidMessage)
		}
	case MsgSum:
		if m.Clock != nil || len(m.Entries) != 0 {
			return nil, fmt.Errorf("%w: sum with a clock or entries", ErrInvalidMessage)
		}
	default:
		return nil, fmt.Errorf("%w: type %d", ErrInvalidMessage, m.Type)
	}
	if m.Clock != nil {
		if err := ValidClock(m.Clock); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
		}
	}
	if m.Floor > MaxVersion {
		return nil, fmt.Errorf("%w: floor %d above 2^53", ErrInvalidMessage, m.Floor)
	}
	return &m, nil
}

// ClockSum is a checksum of a clock's counts (FNV-1a over the ids in
// order, each followed by its count): replicas that merged the same
// changes have the same sum. Timestamps are left out: Descends ignores
// them too.
func ClockSum(c *vclock.Clock) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for id, e := range c.All() {
		if e.Count == 0 {
			continue // equal to an absent entry for Descends
		}
		h.Write([]byte(id))
		binary.BigEndian.PutUint64(b[:], e.Count)
		h.Write([]byte{0})
		h.Write(b[:])
	}
	return h.Sum64()
}

// ValidEntries checks at most MaxNodes entries, each valid, no node twice.
func ValidEntries(es []Entry) error {
	if len(es) > MaxNodes {
		return fmt.Errorf("%d entries, max %d", len(es), MaxNodes)
	}
	seen := make(map[string]struct{}, len(es))
	for _, e := range es {
		if err := e.Validate(); err != nil {
			return err
		}
		if _, dup := seen[e.Node.ID]; dup {
			return fmt.Errorf("duplicate node %q", e.Node.ID)
		}
		seen[e.Node.ID] = struct{}{}
	}
	return nil
}

// ValidRingID checks a ring id: non-empty, at most MaxRingIDLen bytes,
// no whitespace or control characters.
func ValidRingID(id string) error {
	if id == "" {
		return errors.New("empty ring id")
	}
	if len(id) > MaxRingIDLen {
		return fmt.Errorf("ring id longer than %d bytes", MaxRingIDLen)
	}
	if strings.IndexFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return fmt.Errorf("ring id %q contains whitespace or control characters", id)
	}
	return nil
}

// FileState is the persisted form (msgpack): the ring id, this node's ID,
// the clock and every entry, tombstones included.
type FileState struct {
	Version int           `msgpack:"version"`
	Ring    string        `msgpack:"ring"`
	Self    string        `msgpack:"self"`
	Clock   *vclock.Clock `msgpack:"clock"`
	Entries []Entry       `msgpack:"entries"`
	Floor   uint64        `msgpack:"floor,omitempty"`
}

// DecodeFile decodes and validates the msgpack state of node self (the
// file's body, without its trailer); its errors wrap ErrCorrupt. It never
// panics.
func DecodeFile(b []byte, self string) (*FileState, error) {
	var f FileState
	if err := msgpackcheck.UnmarshalLimits(b, &f, StateLimits); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if f.Version != Version {
		return nil, fmt.Errorf("%w: version %d", ErrCorrupt, f.Version)
	}
	if f.Ring != "" {
		if err := ValidRingID(f.Ring); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
	if f.Self != self {
		return nil, fmt.Errorf("%w: state of node %q, not %q", ErrCorrupt, f.Self, self)
	}
	if f.Clock == nil {
		return nil, fmt.Errorf("%w: no clock", ErrCorrupt)
	}
	if err := ValidClock(f.Clock); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if f.Floor > MaxVersion {
		return nil, fmt.Errorf("%w: floor %d above 2^53", ErrCorrupt, f.Floor)
	}
	if err := ValidEntries(f.Entries); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return &f, nil
}

// The flush file is the msgpack FileState followed by a trailer of
// TrailerLen bytes: FileMagic, then the CRC-32C (Castagnoli) of the
// msgpack bytes, big-endian. A file without the magic is the trailerless
// layout of earlier releases, still loaded.
const (
	FileMagic  = "NGS1"
	TrailerLen = len(FileMagic) + 4
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// AppendTrailer appends the trailer to the encoded state.
func AppendTrailer(state []byte) []byte {
	b := append(state, FileMagic...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(state, crcTable))
}

// FileBody checks the trailer and returns the encoded state: b itself when
// it has no trailer (the layout of earlier releases, which DecodeFile
// checks). A checksum mismatch is an error wrapping ErrCorrupt.
func FileBody(b []byte) ([]byte, error) {
	if len(b) < TrailerLen || string(b[len(b)-TrailerLen:len(b)-4]) != FileMagic {
		return b, nil
	}
	body := b[:len(b)-TrailerLen]
	want := binary.BigEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, crcTable); got != want {
		return nil, fmt.Errorf("%w: checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	return body, nil
}

// ReadFile checks a whole flush file's trailer and decodes its state
// (FileBody, then DecodeFile); its errors wrap ErrCorrupt.
func ReadFile(b []byte, self string) (*FileState, error) {
	body, err := FileBody(b)
	if err != nil {
		return nil, err
	}
	return DecodeFile(body, self)
}
