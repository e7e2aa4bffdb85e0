package codec

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/vclock"
)

func ent(id string, version uint64, writer string, removed bool, weight int) Entry {
	return Entry{Node: notp.Node{ID: id, Host: "127.0.0.1", Port: 7000}, Weight: weight, Version: version,
		Writer: writer, Removed: removed, Time: int64(version)}
}

func validMsg() *Message {
	c := vclock.New()
	c.Increment("a")
	return &Message{Type: MsgUpdate, Ring: "ring", Round: 1, Clock: c,
		Entries: []Entry{ent("a", 1, "a", false, 3), ent("b", 2, "a", true, 0)}}
}

// Every decoded ring message is validated: an invalid payload is an error,
// so a malformed or hostile message cannot corrupt the ring's state.
func TestDecodeMessageValidation(t *testing.T) {
	if _, err := DecodeMessage(EncodeMessage(validMsg())); err != nil {
		t.Fatalf("valid message rejected: %v", err)
	}
	cases := map[string]func(m *Message){
		"unknown type":         func(m *Message) { m.Type = 99 },
		"empty ring":           func(m *Message) { m.Ring = "" },
		"ring with space":      func(m *Message) { m.Ring = "a b" },
		"long ring":            func(m *Message) { m.Ring = strings.Repeat("r", MaxRingIDLen+1) },
		"negative round":       func(m *Message) { m.Round = -1 },
		"huge round":           func(m *Message) { m.Round = MaxRound + 1 },
		"no clock":             func(m *Message) { m.Clock = nil },
		"invalid node":         func(m *Message) { m.Entries[0].Node.Port = 0 },
		"empty id":             func(m *Message) { m.Entries[0].Node.ID = "" },
		"weight too big":       func(m *Message) { m.Entries[0].Weight = MaxWeight + 1 },
		"live weight 0":        func(m *Message) { m.Entries[0].Weight = 0 },
		"negative weight":      func(m *Message) { m.Entries[1].Weight = -1 },
		"no writer":            func(m *Message) { m.Entries[0].Writer = "" },
		"duplicate node":       func(m *Message) { m.Entries[1] = m.Entries[0] },
		"digest with entries":  func(m *Message) { m.Type = MsgDigest },
		"pull with entries":    func(m *Message) { m.Type = MsgPull },
		"digest without clock": func(m *Message) { m.Type, m.Entries, m.Clock = MsgDigest, nil, nil },
		"sum with a clock":     func(m *Message) { m.Type, m.Entries = MsgSum, nil },
		"sum with entries":     func(m *Message) { m.Type, m.Clock = MsgSum, nil },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			m := validMsg()
			mutate(m)
			b := EncodeMessage(m)
			if _, err := DecodeMessage(b); !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("decode = %v, want ErrInvalidMessage", err)
			}
		})
	}
	for name, b := range map[string][]byte{"nil": nil, "garbage": []byte("\xc1\xff\x00"), "array": {0x91, 0x01},
		"wrong version": MustEncode(map[string]any{"v": 2, "type": 2, "ring": "r"}),
		// 14 bytes declaring 2^28 entries: rejected before any allocation.
		"huge array": {0x81, 0xa7, 'e', 'n', 't', 'r', 'i', 'e', 's', 0xdd, 0x10, 0, 0, 0}} {
		if _, err := DecodeMessage(b); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("%s: decode = %v, want ErrInvalidMessage", name, err)
		}
	}
}

// The trailer: a file with one reads back its state, one whose checksum
// fails is corrupt, and a file without one (earlier releases) is decoded
// as it is.
func TestReadFile(t *testing.T) {
	good := AppendTrailer(validFile())
	if f, err := ReadFile(good, "a"); err != nil || f.Ring != "ring" || len(f.Entries) != 1 {
		t.Fatalf("ReadFile(valid) = %+v, %v", f, err)
	}
	if f, err := ReadFile(validFile(), "a"); err != nil || f.Ring != "ring" {
		t.Fatalf("ReadFile(trailerless) = %+v, %v", f, err)
	}
	bad := bytes.Clone(good)
	bad[0] ^= 1
	if _, err := ReadFile(bad, "a"); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("ReadFile(flipped bit) = %v, want a checksum error wrapping ErrCorrupt", err)
	}
	for name, b := range map[string][]byte{
		"empty":      {},
		"trailer":    []byte(FileMagic + "\x00\x00\x00\x00"),
		"other node": AppendTrailer(MustEncode(&FileState{Version: Version, Self: "b", Clock: vclock.New()})),
		"no clock":   AppendTrailer(MustEncode(&FileState{Version: Version, Self: "a"})),
		"bad floor":  AppendTrailer(MustEncode(&FileState{Version: Version, Self: "a", Clock: vclock.New(), Floor: MaxVersion + 1})),
	} {
		if _, err := ReadFile(b, "a"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: ReadFile = %v, want ErrCorrupt", name, err)
		}
	}
}

// FuzzDecodeMessage: decoding never panics, and what decodes re-encodes to
// an equal message.
func FuzzDecodeMessage(f *testing.F) {
	f.Add(EncodeMessage(validMsg()))
	d := validMsg()
	d.Type, d.Entries = MsgDigest, nil
	f.Add(EncodeMessage(d))
	f.Add(EncodeMessage(&Message{Type: MsgPull, Ring: "r"}))
	f.Add(EncodeMessage(&Message{Type: MsgSum, Ring: "r", Sum: 42}))
	j := validMsg()
	j.Type, j.Floor = MsgJoin, 7
	f.Add(EncodeMessage(j))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("error %v does not wrap ErrInvalidMessage", err)
			}
			return
		}
		m2, err := DecodeMessage(EncodeMessage(m))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if m2.Type != m.Type || m2.Ring != m.Ring || m2.Round != m.Round || m2.Floor != m.Floor ||
			m2.Sum != m.Sum || !slices.Equal(m2.Entries, m.Entries) {
			t.Fatalf("round trip changed the message")
		}
		if (m.Clock == nil) != (m2.Clock == nil) || (m.Clock != nil && !m.Clock.Equal(m2.Clock)) {
			t.Fatalf("round trip changed the clock")
		}
	})
}

func validFile() []byte {
	c := vclock.New()
	c.Increment("a")
	b, err := msgpack.Marshal(&FileState{Version: Version, Ring: "ring", Self: "a", Clock: c,
		Entries: []Entry{ent("a", 1, "a", false, 3)}})
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzDecodeFile: a flush file, with its trailer or without (earlier
// releases), never panics the reader and is either an error wrapping
// ErrCorrupt or a state that, written back with a trailer, reads to the
// same state.
func FuzzDecodeFile(f *testing.F) {
	f.Add(validFile())
	f.Add(AppendTrailer(validFile()))
	f.Add([]byte("{}"))
	f.Add([]byte(FileMagic + "\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := ReadFile(b, "a")
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		fs2, err := ReadFile(AppendTrailer(MustEncode(fs)), "a")
		if err != nil || !slices.Equal(fs.Entries, fs2.Entries) || fs.Ring != fs2.Ring || fs.Floor != fs2.Floor ||
			!fs.Clock.Equal(fs2.Clock) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
