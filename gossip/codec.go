package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp/internal/msgpackcheck"
	"github.com/notp-go/notp/vclock"
)

// msgType tags a ring message. Values are append-only.
type msgType uint8

const (
	// msgJoin carries the sender's state from Meet: the receiver unions
	// it with its own (every node live on either side stays live), then
	// answers with the merged state.
	msgJoin msgType = 1
	// msgUpdate carries the sender's state; the receiver merges it per
	// entry and forwards its own state with Round-1 while Round > 0.
	msgUpdate msgType = 2
	// msgLeave is msgUpdate from a leaving node (its own entry removed),
	// sent as a kernel call: the reply acknowledges it.
	msgLeave msgType = 3
	// msgDigest carries only the sender's clock (anti-entropy poll); the
	// receiver answers with msgUpdate (round 0) if it has changes the sender
	// lacks, and with msgPull if the sender has changes it lacks.
	msgDigest msgType = 4
	// msgPull asks the receiver for its state (msgUpdate, round 0).
	msgPull msgType = 5
	// msgSum is the idle poll: only a checksum of the sender's clock
	// counts (Sum). A receiver whose own sum differs answers with its
	// msgDigest, which the sender answers as usual; equal sums need no
	// answer. In a converged ring each poll costs a few dozen bytes
	// instead of the whole clock.
	msgSum msgType = 6
)

// wireVersion is the version of the message and file layouts.
const wireVersion = 1

// message is a ring message, the payload of a kernel cast (or, for
// msgLeave, a call) to the handler "gossip/<ring id>".
type message struct {
	V       int           `msgpack:"v"`
	Type    msgType       `msgpack:"type"`
	Ring    string        `msgpack:"ring"`
	Round   int           `msgpack:"round"`
	Clock   *vclock.Clock `msgpack:"clock"`
	Entries []entry       `msgpack:"entries"`
	// Floor (join only): the highest version of the sender's own entry the
	// sender has seen (its leave or removal); the receiver writes the
	// sender's entry above it, so a late tombstone cannot undo the join.
	Floor uint64 `msgpack:"floor,omitempty"`
	// Sum (msgSum only) is clockSum of the sender's clock.
	Sum uint64 `msgpack:"sum,omitempty"`
}

// errInvalidMessage is wrapped by decodeMessage errors.
var errInvalidMessage = errors.New("gossip: invalid message")

func encodeMessage(m *message) []byte {
	m.V = wireVersion
	return mustEncode(m)
}

// rawMessage is message with the clock and entries already encoded; it
// encodes to the same bytes.
type rawMessage struct {
	V       int                `msgpack:"v"`
	Type    msgType            `msgpack:"type"`
	Ring    string             `msgpack:"ring"`
	Round   int                `msgpack:"round"`
	Clock   msgpack.RawMessage `msgpack:"clock"`
	Entries msgpack.RawMessage `msgpack:"entries"`
	Floor   uint64             `msgpack:"floor,omitempty"`
}

func mustEncode(v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		// Only programmer error can get here: every field is encodable.
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

// stateLimits bound a decoded message or file to what the node may hold:
// MaxNodes entries and clock entries. The state never holds more (see
// state.enforce), so whatever it holds, it can send, persist and load.
var stateLimits = msgpackcheck.Limits{Paths: map[string]msgpackcheck.Limit{
	"entries": {MaxLen: MaxNodes, MinElem: minEntrySize},
	"clock":   {MaxLen: MaxNodes, MinElem: minClockEntrySize},
}}

// validClock checks a decoded clock's size and counts.
func validClock(c *vclock.Clock) error {
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

// decodeMessage decodes and validates a ring message. It never panics.
func decodeMessage(b []byte) (*message, error) {
	var m message
	if err := msgpackcheck.UnmarshalLimits(b, &m, stateLimits); err != nil {
		return nil, fmt.Errorf("%w: %w", errInvalidMessage, err)
	}
	if m.V != wireVersion {
		return nil, fmt.Errorf("%w: version %d", errInvalidMessage, m.V)
	}
	if err := validRingID(m.Ring); err != nil {
		return nil, fmt.Errorf("%w: %w", errInvalidMessage, err)
	}
	if m.Round < 0 || m.Round > maxRound {
		return nil, fmt.Errorf("%w: round %d", errInvalidMessage, m.Round)
	}
	switch m.Type {
	case msgJoin, msgUpdate, msgLeave:
		if m.Clock == nil {
			return nil, fmt.Errorf("%w: no clock", errInvalidMessage)
		}
		if err := validEntries(m.Entries); err != nil {
			return nil, fmt.Errorf("%w: %w", errInvalidMessage, err)
		}
	case msgDigest:
		if m.Clock == nil || len(m.Entries) != 0 {
			return nil, fmt.Errorf("%w: digest with entries or without clock", errInvalidMessage)
		}
	case msgPull:
		if len(m.Entries) != 0 {
			return nil, fmt.Errorf("%w: pull with entries", errInvalidMessage)
		}
	case msgSum:
		if m.Clock != nil || len(m.Entries) != 0 {
			return nil, fmt.Errorf("%w: sum with a clock or entries", errInvalidMessage)
		}
	default:
		return nil, fmt.Errorf("%w: type %d", errInvalidMessage, m.Type)
	}
	if m.Clock != nil {
		if err := validClock(m.Clock); err != nil {
			return nil, fmt.Errorf("%w: %w", errInvalidMessage, err)
		}
	}
	if m.Floor > MaxVersion {
		return nil, fmt.Errorf("%w: floor %d above 2^53", errInvalidMessage, m.Floor)
	}
	return &m, nil
}

// clockSum is a checksum of a clock's counts (FNV-1a over the ids in
// order, each followed by its count): replicas that merged the same
// changes have the same sum. Timestamps are left out: Descends ignores
// them too.
func clockSum(c *vclock.Clock) uint64 {
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

func validEntries(es []entry) error {
	if len(es) > MaxNodes {
		return fmt.Errorf("%d entries, max %d", len(es), MaxNodes)
	}
	seen := make(map[string]struct{}, len(es))
	for _, e := range es {
		if err := e.validate(); err != nil {
			return err
		}
		if _, dup := seen[e.Node.ID]; dup {
			return fmt.Errorf("duplicate node %q", e.Node.ID)
		}
		seen[e.Node.ID] = struct{}{}
	}
	return nil
}

// validRingID checks a ring id: non-empty, at most MaxRingIDLen bytes,
// no whitespace or control characters.
func validRingID(id string) error {
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

// fileState is the persisted form (msgpack): the ring id, this node's ID,
// the clock and every entry, tombstones included.
type fileState struct {
	Version int           `msgpack:"version"`
	Ring    string        `msgpack:"ring"`
	Self    string        `msgpack:"self"`
	Clock   *vclock.Clock `msgpack:"clock"`
	Entries []entry       `msgpack:"entries"`
	Floor   uint64        `msgpack:"floor,omitempty"`
}

func decodeFile(b []byte, self string) (*fileState, error) {
	var f fileState
	if err := msgpackcheck.UnmarshalLimits(b, &f, stateLimits); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if f.Version != wireVersion {
		return nil, fmt.Errorf("%w: version %d", ErrCorrupt, f.Version)
	}
	if f.Ring != "" {
		if err := validRingID(f.Ring); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
	if f.Self != self {
		return nil, fmt.Errorf("%w: state of node %q, not %q", ErrCorrupt, f.Self, self)
	}
	if f.Clock == nil {
		return nil, fmt.Errorf("%w: no clock", ErrCorrupt)
	}
	if err := validClock(f.Clock); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if f.Floor > MaxVersion {
		return nil, fmt.Errorf("%w: floor %d above 2^53", ErrCorrupt, f.Floor)
	}
	if err := validEntries(f.Entries); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return &f, nil
}
