// Package cmdargs decodes and checks the arguments of the commands a
// cluster node serves (package command's protocol), answering a payload it
// refuses with notp's BAD_REQUEST reply and per-field messages. It links
// package command and the standard library only, so its fuzz target runs
// far faster than one in package cluster, whose test binary links
// memberlist and Prometheus: Go's fuzz worker resets and scans the coverage
// counters of everything linked on every execution.
package cmdargs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/internal/msgpackcheck"
)

// MsgMissingID, MsgBadNode and MsgBadNodeList are notp's command server's
// messages for a missing id, an invalid node and an invalid node list,
// kept verbatim.
const (
	MsgMissingID   = "Missing required 'id' parameter."
	MsgBadNode     = "Invalid node parameter types."
	MsgBadNodeList = "Invalid node list format, should be: [{id: <id>, host: <host>, port: <port>}]."
)

// Decode decodes the payload of command name and checks the fields the
// command needs.
// command.DecodeArgs checks the payload's declared lengths before
// decoding, so a forged length cannot make the decoder allocate more than
// the payload's size; the re-decoding in fieldErrors happens only after
// that check passed.
// On failure it returns an ok:false BAD_REQUEST reply with per-field
// messages.
func Decode(name string, data []byte) (command.Args, command.Reply, bool) {
	a, err := command.DecodeArgs(data)
	if err != nil {
		var fields map[string]string
		if errors.Is(err, notp.ErrInvalidNode) {
			// The payload decoded (DecodeArgs checked its declared lengths
			// first); only a node failed validation: name its fields.
			fields = fieldErrors(data)
		}
		return a, BadRequest(payloadMessage(data, err), fields), false
	}
	switch name {
	case command.Lookup:
		if a.Key == "" {
			return a, BadRequest("Missing required 'key' parameter.", map[string]string{"key": "required: a non-empty string"}), false
		}
	case command.Join, command.Has, command.Get, command.Weight:
		if a.ID == "" {
			return a, BadRequest(MsgMissingID, map[string]string{"id": "required: a non-empty string"}), false
		}
	case command.Meet, command.Insert, command.Update, command.Remove:
		if a.Node == nil {
			return a, BadRequest(MsgBadNode, map[string]string{"node": "required: {id, host, port}"}), false
		}
	case command.MInsert, command.MRemove:
		if len(a.Nodes) == 0 {
			return a, BadRequest(MsgBadNodeList, map[string]string{"nodes": "required: a non-empty list"}), false
		}
		if f := duplicateIDs(a.Nodes); f != nil {
			return a, BadRequest(MsgBadNodeList, f), false
		}
	}
	return a, command.Reply{}, true
}

// BadRequest is the ok:false BAD_REQUEST reply with message msg and the
// per-field messages fields (nil for none).
func BadRequest(msg string, fields map[string]string) command.Reply {
	r := command.Fail(command.CodeBadRequest, msg)
	r.Error.Fields = fields
	return r
}

// payloadMessage picks notp's message for an invalid node (list) and the
// decoder's text otherwise.
func payloadMessage(data []byte, err error) string {
	if errors.Is(err, notp.ErrInvalidNode) {
		var raw command.Args
		if msgpackcheck.Unmarshal(data, &raw) == nil && raw.Node == nil {
			return MsgBadNodeList
		}
		return MsgBadNode
	}
	return "Invalid command payload: " + err.Error()
}

// fieldErrors re-decodes a payload whose nodes failed validation (so it
// passed command.DecodeArgs's size check and decoded), without validating
// it, and names each bad node field ("node.port", "nodes[2].id").
func fieldErrors(data []byte) map[string]string {
	var raw command.Args
	if err := msgpackcheck.Unmarshal(data, &raw); err != nil {
		return nil
	}
	f := map[string]string{}
	if raw.Node != nil {
		nodeFields("node", *raw.Node, f)
	}
	for i, n := range raw.Nodes {
		nodeFields("nodes["+strconv.Itoa(i)+"]", n, f)
	}
	if len(f) == 0 {
		return nil
	}
	return f
}

func nodeFields(prefix string, n notp.Node, f map[string]string) {
	if n.ID == "" || strings.ContainsAny(n.ID, "@ \t\r\n") {
		f[prefix+".id"] = "must be a non-empty string without '@' or whitespace"
	}
	if n.Host == "" {
		f[prefix+".host"] = "must be a non-empty string"
	}
	if n.Port < 1 || n.Port > notp.MaxPort {
		f[prefix+".port"] = fmt.Sprintf("must be a number in 1..%d", notp.MaxPort)
	}
}

func duplicateIDs(nodes []notp.Node) map[string]string {
	seen := make(map[string]bool, len(nodes))
	for i, n := range nodes {
		if seen[n.ID] {
			return map[string]string{"nodes[" + strconv.Itoa(i) + "].id": fmt.Sprintf("duplicate id '%s'", n.ID)}
		}
		seen[n.ID] = true
	}
	return nil
}
