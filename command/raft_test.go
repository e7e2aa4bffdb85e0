package command_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/notp-go/notp/command"
)

func TestRaftArgsValidate(t *testing.T) {
	for _, tt := range []struct {
		a  command.RaftArgs
		ok bool
	}{
		{command.RaftArgs{Op: command.RaftPeers}, true},
		{command.RaftArgs{Op: command.RaftPeers, Group: "counter"}, true},
		{command.RaftArgs{Op: command.RaftTransfer}, true},
		{command.RaftArgs{Op: command.RaftTransfer, ID: "n2"}, true},
		{command.RaftArgs{Op: command.RaftRemovePeer, ID: "n2"}, true},
		{command.RaftArgs{Op: command.RaftSnapshot}, true},
		{command.RaftArgs{}, false},
		{command.RaftArgs{Op: "nope"}, false},
		{command.RaftArgs{Op: command.RaftRemovePeer}, false},
		{command.RaftArgs{Op: command.RaftPeers, ID: "n2"}, false},
		{command.RaftArgs{Op: command.RaftSnapshot, ID: "n2"}, false},
		{command.RaftArgs{Op: command.RaftPeers, Group: "a b"}, false},
		{command.RaftArgs{Op: command.RaftPeers, Group: "a\x00"}, false},
		{command.RaftArgs{Op: command.RaftPeers, Group: strings.Repeat("g", command.MaxGroupLen+1)}, false},
		{command.RaftArgs{Op: command.RaftRemovePeer, ID: "a@b"}, false},
		{command.RaftArgs{Op: command.RaftRemovePeer, ID: strings.Repeat("i", command.MaxRaftIDLen+1)}, false},
	} {
		b, err := command.EncodeRaftArgs(tt.a)
		if err != nil {
			t.Fatal(err)
		}
		got, err := command.DecodeRaftArgs(b)
		switch {
		case tt.ok && (err != nil || got != tt.a):
			t.Errorf("%+v: got %+v, %v", tt.a, got, err)
		case !tt.ok && !errors.Is(err, command.ErrInvalidArgs):
			t.Errorf("%+v: err %v, want ErrInvalidArgs", tt.a, err)
		}
	}
	if _, err := command.DecodeRaftArgs(append(mustRaftArgs(t, command.RaftArgs{Op: command.RaftPeers}), 0)); err == nil {
		t.Error("trailing byte accepted")
	}
}

func mustRaftArgs(t *testing.T, a command.RaftArgs) []byte {
	t.Helper()
	b, err := command.EncodeRaftArgs(a)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRaftPeersBounds(t *testing.T) {
	for _, bad := range []string{
		`{"peers":[{"id":"a","suffrage":"voter","leader":true},{"id":"b","suffrage":"voter","leader":true}]}`,
		`{"peers":[{"id":"a","suffrage":"king"}]}`,
		`{"peers":[{"id":"","suffrage":"voter"}]}`,
		`{"peers":` + "[" + strings.Repeat(`{},`, command.MaxRaftPeers+1) + `{}]}`,
		`[1]`,
	} {
		if _, err := command.DecodeRaftPeers([]byte(bad)); !errors.Is(err, command.ErrInvalidReply) {
			t.Errorf("%.60s: err %v, want ErrInvalidReply", bad, err)
		}
	}
	d, err := command.DecodeRaftPeers([]byte(`{"group":"g","peers":[{"id":"a","suffrage":"voter","leader":true,"applied":3}]}`))
	if err != nil || len(d.Peers) != 1 || *d.Peers[0].Applied != 3 {
		t.Fatalf("got %+v, %v", d, err)
	}
}
