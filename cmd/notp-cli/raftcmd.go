package main

import (
	"fmt"
	"strings"

	"github.com/notp-go/notp/command"
)

// raftUsage and raftBrief are the synopsis of raft, in help and in the
// list of commands.
const (
	raftUsage = "peers|transfer [<id>]|remove-peer <id>|snapshot [--group <name>]"
	raftBrief = "peers|transfer|remove-peer|snapshot"
)

const raftDesc = "Shows or changes a conflux group (Raft) running on this node. " +
	"peers prints the group's servers (id, address, voter or nonvoter, leader, applied index) and this node's state, term, last log, commit and applied indices; " +
	"transfer hands leadership to <id> or to the most up-to-date voter; " +
	"remove-peer removes server <id> from the group (not the last voter); " +
	"snapshot takes a snapshot on this node now. " +
	"transfer and remove-peer must be sent to the group's leader (elsewhere they fail with NOT_LEADER, naming it). " +
	"--group names the group; it may be left out when the node runs only one."

// groupHelp describes --group.
const groupHelp = "The conflux group to act on. Defaults to the only group the node runs."

// raftPayload builds the raft command's payload from "<op> [<id>]" and
// --group, checked as the node will check it.
func raftPayload(pos []string, o cmdOptions) ([]byte, error) {
	if len(pos) == 0 {
		return nil, fmt.Errorf("missing operation: one of %s", strings.Join(command.RaftOps, ", "))
	}
	a := command.RaftArgs{Op: pos[0], Group: o.group}
	switch a.Op {
	case command.RaftPeers, command.RaftSnapshot:
		if len(pos) > 1 {
			return nil, fmt.Errorf("%s takes no arguments, got %q", a.Op, strings.Join(pos[1:], " "))
		}
	case command.RaftTransfer:
		if len(pos) > 2 {
			return nil, fmt.Errorf("transfer takes at most one <id>, got %d arguments", len(pos)-1)
		}
	case command.RaftRemovePeer:
		if len(pos) != 2 {
			return nil, fmt.Errorf("remove-peer takes one <id>, got %d arguments", len(pos)-1)
		}
	default:
		return nil, fmt.Errorf("unknown operation %q: want one of %s", a.Op, strings.Join(command.RaftOps, ", "))
	}
	if len(pos) == 2 {
		a.ID = pos[1]
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return command.EncodeRaftArgs(a)
}
