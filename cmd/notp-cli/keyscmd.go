package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/kernel"
)

// keysUsage is the keys command's synopsis after its name.
const keysUsage = "list | install <cookie> | use <cookie|id> | remove <cookie|id>"

// keysDesc describes the keys command.
const keysDesc = "Lists or changes the cluster's cookies on every live node, like serf's keys: " +
	"install adds a cookie every node accepts, use makes it the one every node proves with, " +
	"remove retires one (never the one in use). " +
	"The command goes to each node the target lists as alive and succeeds (exit 0) only when every one of them acknowledged. " +
	"A cookie travels sealed under the key notp-cli connects with, and keys are shown and named by fingerprint (16 hex digits, " +
	"which use and remove also accept). Rotate with install, use and remove of the old one, each done before the next."

// errHandledApart: keys runs through runKeys, not the one-request path.
var errHandledApart = fmt.Errorf("keys fans out to every node")

// keysReq is a parsed keys command.
type keysReq struct {
	op     string // command.Key*
	cookie string // install: the new cookie
	id     string // use, remove: the key's fingerprint
	format string
}

// parseKeys validates a keys command line. A use or remove argument that
// is not a fingerprint is a cookie, whose fingerprint it computes.
func parseKeys(args []string) (keysReq, error) {
	var kr keysReq
	var pos []string
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(args[i], "=")
		if name != "--format" {
			pos = append(pos, args[i])
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return kr, fmt.Errorf("keys: option --format needs a value")
			}
			i++
			val = args[i]
		}
		f, err := parseFormat(val)
		if err != nil {
			return kr, fmt.Errorf("keys: %w", err)
		}
		kr.format = f
	}
	if len(pos) == 0 {
		return kr, fmt.Errorf("keys: want list, install, use or remove")
	}
	kr.op = pos[0]
	want := 2
	if kr.op == command.KeyList {
		want = 1
	}
	switch {
	case !slices.Contains([]string{command.KeyList, command.KeyInstall, command.KeyUse, command.KeyRemove}, kr.op):
		return kr, fmt.Errorf("keys: unknown operation %q: want list, install, use or remove", kr.op)
	case len(pos) != want:
		return kr, fmt.Errorf("keys %s: want %d argument(s), got %d", kr.op, want-1, len(pos)-1)
	case kr.op == command.KeyInstall:
		kr.cookie = pos[1]
		if len(kr.cookie) < kernel.MinCookieLen {
			return kr, fmt.Errorf("keys install: the cookie is %d bytes, want at least %d (see keygen)", len(kr.cookie), kernel.MinCookieLen)
		}
	case want == 2:
		kr.id = pos[1]
		if !isKeyID(kr.id) {
			kr.id = kernel.KeyID(pos[1])
		}
	}
	return kr, nil
}

// isKeyID reports whether s is a key fingerprint: 16 lowercase hex digits.
func isKeyID(s string) bool {
	return len(s) == 16 && strings.Trim(s, "0123456789abcdef") == ""
}

// keysArgs is the spec's parser: it validates like parseKeys for help and
// errors, but keys never goes through the single-request path.
func keysArgs(pos []string) (command.Args, error) {
	if _, err := parseKeys(pos); err != nil {
		return command.Args{}, err
	}
	return command.Args{}, errHandledApart
}

// keysResult is the data of notp-cli's keys reply.
type keysResult struct {
	Op    string `json:"op"`
	Live  int    `json:"live"`  // nodes the target lists as alive
	Acked int    `json:"acked"` // of them, those that acknowledged
	// Keys counts, per key, the acknowledging nodes that hold it and
	// those that prove with it.
	Keys    []keyCount `json:"keys"`
	Nodes   []nodeKeys `json:"nodes"`
	Skipped []string   `json:"skipped,omitempty"` // ring nodes not alive, as "id (health)"
}

type keyCount struct {
	ID      string `json:"id"`
	Nodes   int    `json:"nodes"`
	Primary int    `json:"primary"`
}

type nodeKeys struct {
	Node  string            `json:"node"`
	OK    bool              `json:"ok"`
	Keys  []command.KeyInfo `json:"keys,omitempty"`
	Error *command.Error    `json:"error,omitempty"`
}

// liveNode is what keys reads of the nodes command's data.
type liveNode struct {
	ID     string `json:"id"`
	Host   string `json:"host"`
	Port   int    `json:"port"`
	Health string `json:"health"`
}

// runKeys sends the keys operation to every node the target lists as
// alive, one after another, and returns an ok reply only when each one
// acknowledged; otherwise the error names each node that did not.
func runKeys(ctx context.Context, c *client, kr keysReq) command.Reply {
	r := c.do(ctx, command.Nodes, command.Args{})
	if !r.OK {
		return r
	}
	var nodes []liveNode
	if err := json.Unmarshal(r.Data, &nodes); err != nil {
		return failure(codeInvalidReply, "node %q sent a malformed nodes reply: %v", c.target.ID, err)
	}
	args := command.Args{KeyOp: kr.op, KeyID: kr.id}
	if kr.op == command.KeyInstall {
		sealed, err := c.k.SealCookie(kr.cookie)
		if err != nil {
			return failure(codeClient, "keys install needs notp-cli to connect with a cookie (-a, --key-file or %s): %v", envCookie, err)
		}
		args.Sealed = sealed
	}
	res := keysResult{Op: kr.op, Keys: []keyCount{}, Nodes: []nodeKeys{}}
	fields := map[string]string{}
	for _, n := range nodes {
		if n.Health != "alive" {
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s (%s)", n.ID, n.Health))
			continue
		}
		res.Live++
		nr := c.on(notp.Node{ID: n.ID, Host: n.Host, Port: n.Port}).do(ctx, command.Keys, args)
		nk := nodeKeys{Node: n.ID, OK: nr.OK, Error: nr.Error}
		if nr.OK {
			var d command.KeysData
			if err := json.Unmarshal(nr.Data, &d); err != nil {
				nk.OK, nk.Error = false, &command.Error{Code: codeInvalidReply, Message: err.Error()}
			} else {
				nk.Keys = d.Keys
			}
		}
		if nk.OK {
			res.Acked++
			countKeys(&res, nk.Keys)
		} else {
			fields[n.ID] = nk.Error.Message
		}
		res.Nodes = append(res.Nodes, nk)
	}
	data, _ := json.Marshal(res)
	out := command.Reply{OK: res.Live > 0 && res.Acked == res.Live, Data: data}
	if !out.OK {
		out.Error = &command.Error{Code: command.CodeFailed, Fields: fields,
			Message: fmt.Sprintf("keys %s: %d of %d live nodes acknowledged", kr.op, res.Acked, res.Live)}
	}
	return out
}

// countKeys adds one node's keys to the per-key counts.
func countKeys(res *keysResult, keys []command.KeyInfo) {
	for _, k := range keys {
		i := slices.IndexFunc(res.Keys, func(c keyCount) bool { return c.ID == k.ID })
		if i < 0 {
			res.Keys = append(res.Keys, keyCount{ID: k.ID})
			i = len(res.Keys) - 1
		}
		res.Keys[i].Nodes++
		if k.Primary {
			res.Keys[i].Primary++
		}
	}
}

// on returns a client for node on c's kernel (a link of its own).
func (c *client) on(node notp.Node) *client {
	// Connect fails only for an invalid node or a closed kernel; do then
	// reports the missing link as the node's failure.
	_ = c.k.Connect(node)
	cc := *c
	cc.target = node
	return &cc
}

// oneShotKeys serves "notp-cli keys ...": JSON unless --format text;
// exit 0 only when every live node acknowledged.
func oneShotKeys(ctx context.Context, o options, stdout, stderr io.Writer) int {
	kr, err := parseKeys(o.args)
	if err != nil {
		reportSynopsis(stderr, err, "keys "+keysUsage)
		return exitUsage
	}
	format := cmp.Or(kr.format, o.format, "json")
	return withClient(ctx, o, "", format, stdout, func(c *client) command.Reply {
		r := runKeys(ctx, c, kr)
		writeAll(stdout, render(command.Keys, r, format, false, 0))
		return r
	})
}
