package fuzz

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/command"
)

// FuzzDecodeArgs: DecodeArgs never panics, and what it accepts is valid
// and survives an encode/decode round trip unchanged.
func FuzzDecodeArgs(f *testing.F) {
	n := notp.Node{ID: "a", Host: "h", Port: 1}
	for _, a := range []command.Args{{}, {ID: "x"}, {Node: &n, Weight: 3, Force: true}, {Nodes: []notp.Node{n, n}}} {
		b, err := command.EncodeArgs(a)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xc1})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff}) // map32 claiming 4G entries
	f.Add([]byte{0x81, 0xa5, 'n', 'o', 'd', 'e', 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := command.DecodeArgs(b)
		if err != nil {
			return
		}
		if a.Node != nil && a.Node.Validate() != nil {
			t.Fatalf("accepted invalid node %+v", *a.Node)
		}
		for _, n := range a.Nodes {
			if n.Validate() != nil {
				t.Fatalf("accepted invalid node %+v", n)
			}
		}
		enc, err := command.EncodeArgs(a)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", a, err)
		}
		back, err := command.DecodeArgs(enc)
		if err != nil {
			t.Fatalf("re-decode %+v: %v", a, err)
		}
		if !argsEqual(a, back) {
			t.Fatalf("round trip: %+v became %+v", a, back)
		}
	})
}

// argsEqual compares Args, treating a nil and an empty node list alike
// (omitempty drops an empty list).
func argsEqual(a, b command.Args) bool {
	if len(a.Nodes) == 0 && len(b.Nodes) == 0 {
		a.Nodes, b.Nodes = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

// FuzzDecodeReply: DecodeReply never panics, and what it accepts is well
// formed (ok xor error, Data valid JSON) and round-trips.
func FuzzDecodeReply(f *testing.F) {
	ok, _ := command.OK(map[string]any{"ring": []int{1, 2}})
	fail := command.Fail(command.CodeBadRequest, "Missing required 'id' parameter.")
	fail.Error.Fields = map[string]string{"id": "missing"}
	for _, r := range []command.Reply{ok, fail, {OK: true}} {
		b, err := command.EncodeReply(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xc1})
	f.Add([]byte{0x81, 0xa4, 'd', 'a', 't', 'a', 0xc6, 0xff, 0xff, 0xff, 0xff}) // bin32 claiming 4 GB
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := command.DecodeReply(b)
		if err != nil {
			return
		}
		if r.OK == (r.Error != nil) {
			t.Fatalf("accepted ok=%v with error %+v", r.OK, r.Error)
		}
		if len(r.Data) > 0 && !json.Valid(r.Data) {
			t.Fatalf("accepted invalid JSON data %q", r.Data)
		}
		enc, err := command.EncodeReply(r)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", r, err)
		}
		back, err := command.DecodeReply(enc)
		if err != nil {
			t.Fatalf("re-decode %+v: %v", r, err)
		}
		if back.OK != r.OK || !bytes.Equal(back.Data, r.Data) || !errorEqual(back.Error, r.Error) {
			t.Fatalf("round trip: %+v became %+v", r, back)
		}
	})
}

func errorEqual(a, b *command.Error) bool {
	if a == nil || b == nil {
		return a == b
	}
	if len(a.Fields) == 0 && len(b.Fields) == 0 {
		return a.Message == b.Message && a.Code == b.Code
	}
	return reflect.DeepEqual(*a, *b)
}

// FuzzDecodeRaftArgs: DecodeRaftArgs never panics, and what it accepts is
// valid and survives an encode/decode round trip unchanged.
func FuzzDecodeRaftArgs(f *testing.F) {
	for _, a := range []command.RaftArgs{
		{Op: command.RaftPeers}, {Op: command.RaftTransfer, Group: "g"},
		{Op: command.RaftRemovePeer, ID: "n3"}, {Op: command.RaftSnapshot, Group: "counter"},
	} {
		b, err := command.EncodeRaftArgs(a)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x81, 0xa2, 'o', 'p', 0xdb, 0xff, 0xff, 0xff, 0xff}) // str32 claiming 4 GB
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := command.DecodeRaftArgs(b)
		if err != nil {
			return
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("accepted invalid %+v: %v", a, err)
		}
		enc, err := command.EncodeRaftArgs(a)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", a, err)
		}
		back, err := command.DecodeRaftArgs(enc)
		if err != nil || back != a {
			t.Fatalf("round trip: %+v became %+v (%v)", a, back, err)
		}
	})
}

// FuzzDecodeRaftPeers: DecodeRaftPeers never panics, and what it accepts
// keeps its bounds and survives a JSON round trip.
func FuzzDecodeRaftPeers(f *testing.F) {
	seven := uint64(7)
	d := command.RaftPeersData{Group: "g", Node: "a", State: "leader", Leader: "a", Term: 2, LastIndex: 9,
		CommitIndex: 9, AppliedIndex: 9, Peers: []command.RaftPeer{
			{ID: "a", Address: "127.0.0.1:1", Suffrage: "voter", Leader: true, Applied: &seven},
			{ID: "b", Address: "127.0.0.1:2", Suffrage: "nonvoter"},
		}}
	b, err := json.Marshal(d)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"peers":[{"id":"a","suffrage":"voter","leader":true},{"id":"b","suffrage":"voter","leader":true}]}`))
	f.Add([]byte(`{"peers":[{"id":"","suffrage":"voter"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := command.DecodeRaftPeers(b)
		if err != nil {
			return
		}
		if len(d.Peers) > command.MaxRaftPeers {
			t.Fatalf("accepted %d peers", len(d.Peers))
		}
		enc, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		back, err := command.DecodeRaftPeers(enc)
		if err != nil || !reflect.DeepEqual(back, d) {
			t.Fatalf("round trip: %+v became %+v (%v)", d, back, err)
		}
	})
}
