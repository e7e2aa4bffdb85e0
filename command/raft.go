package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp/internal/msgpackcheck"
)

// Raft is the command of package conflux's Raft groups. Unlike the
// commands of Names it is not built into the command server: a node
// answers it while it runs at least one conflux group (elsewhere the
// reply is UNKNOWN_COMMAND). Its payload is a msgpack RaftArgs, not an
// Args.
const Raft = "raft"

// The operations of the raft command (RaftArgs.Op).
const (
	RaftPeers      = "peers"       // the group's servers and this node's Raft state: RaftPeersData
	RaftTransfer   = "transfer"    // RaftArgs.ID ("" = any voter): hand leadership over; run on the leader
	RaftRemovePeer = "remove-peer" // RaftArgs.ID: remove the server from the group; run on the leader
	RaftSnapshot   = "snapshot"    // take a snapshot on this node now
)

// RaftOps lists the raft command's operations in the order help shows
// them.
var RaftOps = []string{RaftPeers, RaftTransfer, RaftRemovePeer, RaftSnapshot}

// CodeNotLeader is the error code of a raft operation that must run on
// the group's leader and reached a follower; the message names the
// leader when the node knows it.
const CodeNotLeader = "NOT_LEADER"

// RaftArgs is the payload of the raft command.
type RaftArgs struct {
	// Group names the conflux group; "" = the only group on the node (a
	// node that runs several refuses an empty name).
	Group string `msgpack:"group,omitempty"`
	// Op is one of RaftOps.
	Op string `msgpack:"op"`
	// ID is the server of transfer (optional) and remove-peer (required):
	// a node ID.
	ID string `msgpack:"id,omitempty"`
}

// MaxGroupLen is the longest group name RaftArgs may carry, in bytes.
const MaxGroupLen = 128

// MaxRaftIDLen is the longest server ID RaftArgs may carry, in bytes.
const MaxRaftIDLen = 256

// EncodeRaftArgs encodes a raft command payload.
func EncodeRaftArgs(a RaftArgs) ([]byte, error) { return msgpack.Marshal(&a) }

// DecodeRaftArgs decodes and validates a raft command payload: Op one of
// RaftOps, Group at most MaxGroupLen bytes without whitespace or control
// characters, ID at most MaxRaftIDLen bytes without '@' or whitespace,
// required by remove-peer and refused by peers and snapshot. Declared
// lengths are checked against the payload's size before decoding and
// trailing bytes are an error, so the decoder allocates no more than the
// payload's size.
func DecodeRaftArgs(b []byte) (RaftArgs, error) {
	var a RaftArgs
	if err := msgpackcheck.Unmarshal(b, &a); err != nil {
		return RaftArgs{}, fmt.Errorf("command: decode raft args: %w", err)
	}
	if err := a.Validate(); err != nil {
		return RaftArgs{}, err
	}
	return a, nil
}

// Validate checks a RaftArgs as DecodeRaftArgs does.
func (a RaftArgs) Validate() error {
	switch {
	case len(a.Group) > MaxGroupLen:
		return fmt.Errorf("%w: group name of %d bytes, at most %d", ErrInvalidArgs, len(a.Group), MaxGroupLen)
	case !printable(a.Group):
		return fmt.Errorf("%w: group name %q has whitespace or control characters", ErrInvalidArgs, a.Group)
	case len(a.ID) > MaxRaftIDLen:
		return fmt.Errorf("%w: server id of %d bytes, at most %d", ErrInvalidArgs, len(a.ID), MaxRaftIDLen)
	case !printable(a.ID) || strings.Contains(a.ID, "@"):
		return fmt.Errorf("%w: server id %q has '@', whitespace or control characters", ErrInvalidArgs, a.ID)
	}
	switch a.Op {
	case RaftRemovePeer:
		if a.ID == "" {
			return fmt.Errorf("%w: remove-peer needs the server's id", ErrInvalidArgs)
		}
	case RaftTransfer:
	case RaftPeers, RaftSnapshot:
		if a.ID != "" {
			return fmt.Errorf("%w: %s takes no server id", ErrInvalidArgs, a.Op)
		}
	default:
		return fmt.Errorf("%w: raft operation %q, want one of %s", ErrInvalidArgs, a.Op, strings.Join(RaftOps, ", "))
	}
	return nil
}

// printable reports whether s is valid UTF-8 without whitespace or
// control characters.
func printable(s string) bool {
	for _, r := range s {
		if r == '\uFFFD' || r <= ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u00a0' || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// RaftPeersData is the data of raft peers: the group's configuration as
// this node knows it and this node's Raft state.
type RaftPeersData struct {
	Group string `json:"group"`
	// Node is the ID of the node that answered; State its Raft state
	// (leader, follower, candidate or shutdown).
	Node  string `json:"node"`
	State string `json:"state"`
	// Leader is the leader's ID as this node knows it, "" when none.
	Leader string `json:"leader"`
	// Term is this node's current term; LastIndex the last entry in its
	// log, CommitIndex the last it knows committed, AppliedIndex the last
	// Raft applied here.
	Term         uint64 `json:"term"`
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// Peers are the servers of the group's latest configuration.
	Peers []RaftPeer `json:"peers"`
}

// RaftPeer is one server of a group's configuration.
type RaftPeer struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// Suffrage is "voter", "nonvoter" or "staging".
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
	// Applied is the index of the last action the server's store applied,
	// as it reported it; nil when it did not answer in time.
	Applied *uint64 `json:"applied,omitempty"`
}

// RaftOpData is the data of raft transfer, remove-peer and snapshot.
type RaftOpData struct {
	Group string `json:"group"`
	Op    string `json:"op"`
	// Node is the server the operation named (transfer's target when one
	// was given, remove-peer's removed server).
	Node string `json:"node,omitempty"`
	// Leader is the leader after a transfer, as the old leader knows it
	// ("" while the new one is not yet known).
	Leader string `json:"leader,omitempty"`
	// Index and Term are those of the last entry a snapshot covers.
	Index uint64 `json:"index,omitempty"`
	Term  uint64 `json:"term,omitempty"`
}

// MaxRaftPeers bounds the servers a RaftPeersData may list: more than any
// group has (voters are a handful, non-voters one per ring node).
const MaxRaftPeers = 10000

// MaxRaftData bounds the JSON of a raft reply's data, in bytes: MaxRaftPeers
// servers at their longest fit.
const MaxRaftData = 8 << 20

// DecodeRaftPeers decodes the data of a raft peers reply and checks it:
// at most MaxRaftData bytes and MaxRaftPeers servers, each with an ID of
// at most MaxRaftIDLen bytes and a known suffrage, and at most one leader.
// Unknown fields are ignored (newer nodes may add some).
func DecodeRaftPeers(data []byte) (RaftPeersData, error) {
	var d RaftPeersData
	if len(data) > MaxRaftData {
		return d, fmt.Errorf("%w: raft peers data of %d bytes, at most %d", ErrInvalidReply, len(data), MaxRaftData)
	}
	if n := bytes.Count(data, []byte("{")); n > MaxRaftPeers+1 {
		return d, fmt.Errorf("%w: raft peers data with %d objects, at most %d servers", ErrInvalidReply, n, MaxRaftPeers)
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return RaftPeersData{}, fmt.Errorf("%w: raft peers data: %w", ErrInvalidReply, err)
	}
	if len(d.Peers) > MaxRaftPeers {
		return RaftPeersData{}, fmt.Errorf("%w: %d servers, at most %d", ErrInvalidReply, len(d.Peers), MaxRaftPeers)
	}
	leaders := 0
	for i, p := range d.Peers {
		switch {
		case p.ID == "" || len(p.ID) > MaxRaftIDLen:
			return RaftPeersData{}, fmt.Errorf("%w: server %d: id of %d bytes, want 1-%d", ErrInvalidReply, i, len(p.ID), MaxRaftIDLen)
		case p.Suffrage != "voter" && p.Suffrage != "nonvoter" && p.Suffrage != "staging":
			return RaftPeersData{}, fmt.Errorf("%w: server %q: suffrage %q", ErrInvalidReply, p.ID, p.Suffrage)
		}
		if p.Leader {
			leaders++
		}
	}
	if leaders > 1 {
		return RaftPeersData{}, fmt.Errorf("%w: %d servers marked leader", ErrInvalidReply, leaders)
	}
	return d, nil
}
