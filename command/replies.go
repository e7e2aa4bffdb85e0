package command

import (
	"encoding/json"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/vclock"
)

// InspectData is the data of the inspect command: the ring as JSON.
type InspectData struct {
	// Ring is the ring id, "" when the node is not in a ring.
	Ring    string `json:"ring"`
	RFactor int    `json:"rfactor"`
	PFactor int    `json:"pfactor"`
	// Nodes are the ring's nodes in ring order with their weights (tokens).
	Nodes []WeightedNode `json:"nodes"`
	// VClock is the ring's vector clock.
	VClock *vclock.Clock `json:"vclock"`
}

// WeightedNode is a ring node with its weight, as inspect shows it.
type WeightedNode struct {
	ID     string `json:"id"`
	Host   string `json:"host"`
	Port   int    `json:"port"`
	Weight int    `json:"weight"`
}

// NodeHealth is one element of the nodes command's data.
type NodeHealth struct {
	ID   string `json:"id"`
	Host string `json:"host"`
	Port int    `json:"port"`
	// Health is the failure detector's view: "alive", "suspect", "dead",
	// "left" or "unknown".
	Health string `json:"health"`
}

// Share is one element of the ownership command's data.
type Share struct {
	ID string `json:"id"`
	// Share is the node's fraction of the hash space, in [0, 1].
	Share float64 `json:"share"`
}

// LookupData is the data of the lookup command.
type LookupData struct {
	Key string `json:"key"`
	// Owner is the node that owns the key; nil when the ring is empty.
	Owner *notp.Node `json:"owner"`
	// Preference is the key's preference list: the owner and its
	// successors, distinct nodes in ring order, at most the asked length.
	Preference []notp.Node `json:"preference"`
}

// InfoData is the data of the info command.
type InfoData struct {
	Node notp.Node `json:"node"`
	// Version is the notp module's version in the node's binary ("(devel)"
	// when built from a checkout); Go is the toolchain that built it.
	Version string `json:"version"`
	Go      string `json:"go"`
	// Uptime is the time since the node was built, rounded to the second
	// (UptimeSeconds is the same as a number).
	Uptime        string  `json:"uptime"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	// Ring is the ring id ("" outside a ring), Nodes and Tokens its size.
	Ring    string `json:"ring"`
	Nodes   int    `json:"nodes"`
	Tokens  int    `json:"tokens"`
	RFactor int    `json:"rfactor"`
	PFactor int    `json:"pfactor"`
	// Health counts the ring's nodes by the failure detector's (memberlist's)
	// view: alive, suspect, dead, left, unknown.
	Health map[string]int `json:"health"`
	Kernel *kernel.Stats  `json:"kernel,omitempty"`
	// Gossip is the node's gossip.Stats as JSON, kept raw so that the
	// protocol does not pull gossip (and memberlist) into clients.
	Gossip json.RawMessage `json:"gossip,omitempty"`
	// Memberlist is the traffic counters of memberlist's transport over
	// the kernel (gossip.TransportStats: packets, streams and their bytes
	// in and out, and streams refused at their limits) as JSON, raw like
	// Gossip. The counters are the node's own, summed over every
	// memberlist its ring has run (each join starts a new one).
	Memberlist json.RawMessage `json:"memberlist,omitempty"`
}
