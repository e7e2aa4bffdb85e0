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
	"github.com/notp-go/notp/cmd/notp-cli/internal/cmdline"
	"github.com/notp-go/notp/command"
)

// keysResult is the data of notp-cli's keys reply.
type keysResult struct {
	Op string `json:"op"`
	// Live counts the nodes asked: those the target lists as neither
	// dead nor left (alive, suspect or unknown).
	Live  int `json:"live"`
	Acked int `json:"acked"` // of them, those that acknowledged
	// Keys counts, per key, the acknowledging nodes that hold it and
	// those that prove with it.
	Keys    []keyCount `json:"keys"`
	Nodes   []nodeKeys `json:"nodes"`
	Skipped []string   `json:"skipped,omitempty"` // ring nodes dead or left, as "id (health)"
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

// skipKeys reports whether keys leaves out a node of this health: only
// nodes known to be gone. A suspect node may still be running, and one
// that missed a use or remove would be cut off from the others, so it is
// asked, and not reaching it fails the command.
func skipKeys(health string) bool { return health == "dead" || health == "left" }

// runKeys sends the keys operation to every node the target lists as
// neither dead nor left, one after another, and returns an ok reply only
// when each one acknowledged; otherwise the error names each node that did
// not, with why (its field), and the dead or left nodes it skipped.
func runKeys(ctx context.Context, c *client, kr cmdline.KeysRequest) command.Reply {
	r := c.do(ctx, command.Nodes, command.Args{})
	if !r.OK {
		return r
	}
	var nodes []liveNode
	if err := json.Unmarshal(r.Data, &nodes); err != nil {
		return failure(codeInvalidReply, "node %q sent a malformed nodes reply: %v", c.target.ID, err)
	}
	args := command.Args{KeyOp: kr.Op, KeyID: kr.ID}
	if kr.Op == command.KeyInstall {
		sealed, err := c.k.SealCookie(kr.Cookie)
		if err != nil {
			return failure(codeClient, "keys install needs notp-cli to connect with a cookie (-a, --key-file or %s): %v", cmdline.EnvCookie, err)
		}
		args.Sealed = sealed
	}
	res := keysResult{Op: kr.Op, Keys: []keyCount{}, Nodes: []nodeKeys{}}
	fields := map[string]string{}
	for _, n := range nodes {
		if skipKeys(n.Health) {
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
			if nk.Error.Code != "" {
				fields[n.ID] += " (" + nk.Error.Code + ")"
			}
		}
		res.Nodes = append(res.Nodes, nk)
	}
	data, _ := json.Marshal(res)
	out := command.Reply{OK: res.Live > 0 && res.Acked == res.Live, Data: data}
	if !out.OK {
		msg := fmt.Sprintf("keys %s: %d of %d nodes asked acknowledged", kr.Op, res.Acked, res.Live)
		if len(res.Skipped) > 0 {
			msg += "; skipped as dead or left: " + strings.Join(res.Skipped, ", ")
		}
		out.Error = &command.Error{Code: command.CodeFailed, Fields: fields, Message: msg}
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
// exit 0 only when every node neither dead nor left acknowledged.
func oneShotKeys(ctx context.Context, o cmdline.Flags, stdout, stderr io.Writer) int {
	kr, err := cmdline.ParseKeys(o.Args)
	if err != nil {
		reportSynopsis(stderr, err, "keys "+cmdline.KeysUsage)
		return exitUsage
	}
	format := cmp.Or(kr.Format, o.Format, "json")
	return withClient(ctx, o, "", format, stdout, func(c *client) command.Reply {
		r := runKeys(ctx, c, kr)
		writeAll(stdout, render(command.Keys, r, format, false, 0))
		return r
	})
}
