package chash

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/google/btree"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/wire"
)

// ErrInvalidRing is wrapped by every error the decoders return for input
// that does not describe a valid ring.
var ErrInvalidRing = errors.New("chash: invalid ring")

// Compile-time checks of the encoding interfaces.
var (
	_ msgpack.CustomEncoder = (*Ring)(nil)
	_ msgpack.CustomDecoder = (*Ring)(nil)
	_ json.Marshaler        = (*Ring)(nil)
	_ json.Unmarshaler      = (*Ring)(nil)
)

// wireRing is the serialised form {rfactor, pfactor, tokens: [{token, node}]}
// with tokens in ring order.
type wireRing struct {
	RFactor int         `json:"rfactor"`
	PFactor int         `json:"pfactor"`
	Tokens  []wireToken `json:"tokens"`
}

// wireToken is one token. In JSON the token is a decimal string: tokens use
// all 64 bits and JSON numbers above 2^53 lose precision in JavaScript and
// other float64-based tools (jq, browsers), which would corrupt the ring.
type wireToken struct {
	Token uint64    `json:"token,string"`
	Node  notp.Node `json:"node"`
}

// UnmarshalJSON decodes a token and rejects one without a node id at once
// (validate would reject it anyway): otherwise a run of three-byte {}
// elements would decode into 48-byte tokens, far more memory than input.
func (t *wireToken) UnmarshalJSON(b []byte) error {
	type plain wireToken // the same fields and tags, without this method
	if err := json.Unmarshal(b, (*plain)(t)); err != nil {
		return err
	}
	if t.Node.ID == "" {
		return errors.New("token without a node id")
	}
	return nil
}

func (r *Ring) wire() wireRing {
	r.mu.Lock()
	w := wireRing{RFactor: r.rfactorLocked(), PFactor: r.pfactor}
	r.mu.Unlock()
	if w.PFactor <= 0 {
		w.PFactor = DefaultPFactor
	}
	s := r.load()
	w.Tokens = make([]wireToken, len(s.tokens))
	for i, t := range s.tokens {
		w.Tokens[i] = wireToken{t, s.nodes[s.owners[i]]}
	}
	return w
}

// MarshalJSON encodes the ring as
// {"rfactor":3,"pfactor":2,"tokens":[{"token":"<decimal>","node":{…}}…]}
// with tokens in ring order.
func (r *Ring) MarshalJSON() ([]byte, error) {
	return json.Marshal(r.wire())
}

// UnmarshalJSON replaces r with the ring data describes, after validating it
// (see [Ring.DecodeMsgpack]). On error r is unchanged; JSON null is a no-op,
// as encoding/json expects.
func (r *Ring) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var w wireRing
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRing, err)
	}
	return r.adopt(w)
}

// EncodeMsgpack implements [msgpack.CustomEncoder] with the same form as
// [Ring.MarshalJSON], tokens as unsigned integers.
func (r *Ring) EncodeMsgpack(enc *msgpack.Encoder) error {
	w := r.wire()
	if err := enc.EncodeMapLen(3); err != nil {
		return err
	}
	for _, f := range []struct {
		k string
		v int
	}{{"rfactor", w.RFactor}, {"pfactor", w.PFactor}} {
		if err := enc.EncodeString(f.k); err != nil {
			return err
		}
		if err := enc.EncodeInt(int64(f.v)); err != nil {
			return err
		}
	}
	if err := enc.EncodeString("tokens"); err != nil {
		return err
	}
	if err := enc.EncodeArrayLen(len(w.Tokens)); err != nil {
		return err
	}
	for _, t := range w.Tokens {
		if err := encodeToken(enc, t); err != nil {
			return err
		}
	}
	return nil
}

func encodeToken(enc *msgpack.Encoder, t wireToken) error {
	if err := enc.EncodeMapLen(2); err != nil {
		return err
	}
	if err := enc.EncodeString("token"); err != nil {
		return err
	}
	if err := enc.EncodeUint(t.Token); err != nil {
		return err
	}
	if err := enc.EncodeString("node"); err != nil {
		return err
	}
	return enc.Encode(t.Node)
}

// DecodeMsgpack implements [msgpack.CustomDecoder]. It replaces r with the
// decoded ring after validating it: both factors > 0, every node has a
// non-empty ID and one value across its tokens, tokens are in strictly
// increasing ring order (so no duplicates), and each node's tokens are
// exactly Token(ID, i) for i = 1..its weight. A corrupt or forged encoding is
// therefore an error wrapping [ErrInvalidRing], never a broken ring. On
// error r is unchanged. (A msgpack nil never reaches this method: the
// msgpack library itself resets the target to the zero, empty Ring.)
func (r *Ring) DecodeMsgpack(dec *msgpack.Decoder) error {
	b, err := wire.ReadValue(dec)
	var w wireRing
	if err == nil {
		w, err = decodeWire(b)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRing, err)
	}
	return r.adopt(w)
}

// decodeWire reads a wireRing. No declared length is trusted: the value's
// bytes are read off the decoder with wire.ReadValue and decoded with a
// wire.Reader, which check every str, bin, ext, array and map against the
// input left before anything is read or allocated for it, and each token
// must name its node as soon as it is read, so decoding n bytes allocates a
// small multiple of n whatever the input declares.
func decodeWire(b []byte) (wireRing, error) {
	var w wireRing
	rd := wire.NewReader(b)
	r := &rd
	err := r.MapFields(func(key string) (err error) {
		switch key {
		case "rfactor":
			w.RFactor, err = readInt(r)
		case "pfactor":
			w.PFactor, err = readInt(r)
		case "tokens":
			w.Tokens, err = decodeTokens(r)
		default:
			err = r.Skip() // unknown fields are ignored, as in JSON
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
		return nil
	})
	return w, err
}

// decodeTokens reads the token array growing the slice as elements arrive,
// so a forged length header cannot make it allocate ahead of the input. A
// token without a node id is rejected at once (validate would reject it
// anyway): otherwise a run of one-byte empty maps would decode into
// 48-byte tokens, far more memory than input.
func decodeTokens(r *wire.Reader) ([]wireToken, error) {
	n, err := r.ArrayLen()
	if err != nil || n <= 0 {
		return nil, err
	}
	out := make([]wireToken, 0, min(n, 16))
	for i := range n {
		t, err := decodeToken(r)
		if err == nil && t.Node.ID == "" {
			err = errors.New("node has an empty id")
		}
		if err != nil {
			return nil, fmt.Errorf("token %d: %w", i, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// decodeToken reads one {token, node} map, ignoring unknown keys.
func decodeToken(r *wire.Reader) (wireToken, error) {
	var t wireToken
	err := r.MapFields(func(key string) (err error) {
		switch key {
		case "token":
			t.Token, err = r.Uint()
		case "node":
			t.Node, err = decodeNode(r)
		default:
			err = r.Skip()
		}
		return err
	})
	return t, err
}

// decodeNode reads a notp.Node encoded as msgpack encodes the struct: a map
// of id, host and port, unknown keys ignored, nil for the zero Node.
func decodeNode(r *wire.Reader) (notp.Node, error) {
	var n notp.Node
	err := r.MapFields(func(key string) (err error) {
		switch key {
		case "id":
			n.ID, err = r.Str()
		case "host":
			n.Host, err = r.Str()
		case "port":
			n.Port, err = readInt(r)
		default:
			err = r.Skip()
		}
		return err
	})
	if err != nil {
		return n, fmt.Errorf("node: %w", err)
	}
	return n, nil
}

// readInt reads an integer that fits an int.
func readInt(r *wire.Reader) (int, error) {
	v, err := r.Int()
	if err == nil && int64(int(v)) != v {
		err = fmt.Errorf("integer %d out of range", v)
	}
	return int(v), err
}

// adopt validates w and, if it is valid, replaces r's contents with it.
func (r *Ring) adopt(w wireRing) error {
	tree, nodes, weights, err := w.validate()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRing, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rfactor, r.pfactor = w.RFactor, w.PFactor
	r.tree, r.nodes, r.weights = tree, nodes, weights
	r.publishLocked()
	return nil
}

func (w wireRing) validate() (*btree.BTreeG[item], map[string]notp.Node, map[string]int, error) {
	if w.RFactor <= 0 || w.PFactor <= 0 {
		return nil, nil, nil, fmt.Errorf("factors rfactor=%d pfactor=%d, want > 0", w.RFactor, w.PFactor)
	}
	nodes := make(map[string]notp.Node)
	owned := make(map[string][]uint64) // each ID's tokens, ascending
	tree := btree.NewG(btreeDegree, itemLess)
	for i, t := range w.Tokens {
		id := t.Node.ID
		if id == "" {
			return nil, nil, nil, fmt.Errorf("token %d: node has an empty id", i)
		}
		if n, ok := nodes[id]; ok && n != t.Node {
			return nil, nil, nil, fmt.Errorf("token %d: node %q has two values, %v and %v", i, id, n, t.Node)
		}
		if i > 0 {
			prev := w.Tokens[i-1]
			if !itemLess(item{prev.Token, prev.Node.ID}, item{t.Token, id}) {
				return nil, nil, nil, fmt.Errorf("token %d (%d of %q) is a duplicate or out of ring order", i, t.Token, id)
			}
		}
		nodes[id] = t.Node
		owned[id] = append(owned[id], t.Token)
		tree.ReplaceOrInsert(item{t.Token, id})
	}
	weights := make(map[string]int, len(owned))
	var buf []byte
	for id, toks := range owned {
		for i := 1; i <= len(toks); i++ {
			buf = tokenName(buf[:0], id, i)
			if _, found := slices.BinarySearch(toks, Token(id, i)); !found {
				return nil, nil, nil, fmt.Errorf("node %q has %d tokens but not its token %d (%q)", id, len(toks), i, buf)
			}
		}
		weights[id] = len(toks)
	}
	return tree, nodes, weights, nil
}
