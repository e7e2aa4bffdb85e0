package gossip

import (
	"fmt"
	"time"

	"github.com/notp-go/notp"
)

// Health is what memberlist says about a ring member.
type Health uint8

// The health values. HealthUnknown: memberlist has not (yet) reported the
// node, for example before it is met or while this node is not in a ring.
const (
	HealthUnknown Health = iota
	HealthAlive
	HealthSuspect
	HealthDead
	HealthLeft
)

var healthNames = [...]string{"unknown", "alive", "suspect", "dead", "left"}

// String returns "unknown", "alive", "suspect", "dead" or "left".
func (h Health) String() string {
	if int(h) < len(healthNames) {
		return healthNames[h]
	}
	return fmt.Sprintf("health(%d)", uint8(h))
}

// MarshalText implements encoding.TextMarshaler with [Health.String].
func (h Health) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// Member is one ring node with its weight (tokens) and its health.
type Member struct {
	Node   notp.Node `json:"node"`
	Weight int       `json:"weight"` // tokens (virtual nodes)
	Health Health    `json:"health"` // memberlist's view; always alive for this node
}

// EventKind says what an [Event] reports.
type EventKind uint8

// The event kinds. Values are append-only.
const (
	// EventInserted: Nodes joined the ring (a local or a received change).
	EventInserted EventKind = iota + 1
	// EventRemoved: Nodes left the ring (removed or left).
	EventRemoved
	// EventUpdated: Nodes changed weight or address.
	EventUpdated
	// EventConflict: a received state was concurrent with the local one
	// (both had changes the other had not seen); it was merged per node.
	// Nodes lists the members whose entries the remote state changed.
	EventConflict
	// EventSelfRemoved: another node removed this node from the ring.
	// This node has fallen back to a ring of its own and is no longer in
	// a ring (RingID is ""); Nodes is this node.
	EventSelfRemoved
	// EventLeft: this node left the ring (Ring.Leave); Nodes is this node.
	EventLeft
	// EventAlive: memberlist reports ring members (Nodes) alive — joined
	// or recovered.
	EventAlive
	// EventSuspect: memberlist suspects ring members. Reserved: memberlist
	// v0.6.0 exposes no suspicion hook, so this release never emits it.
	EventSuspect
	// EventDead: memberlist declared ring members dead (failed probes).
	EventDead
	// EventMemberLeft: ring members left memberlist gracefully (they
	// stopped or left the ring); they stay in the ring until removed.
	EventMemberLeft
	// EventSend: this node sent its state to Nodes (a change it
	// originated or forwarded), like notp's "send".
	EventSend
	// EventRefused: entries for Nodes were refused because the ring was
	// full: it would have held more than MaxNodes entries (after evicting
	// its oldest tombstones) or more than Config.MaxTokens tokens. A
	// refused local change also fails with ErrRingFull.
	EventRefused
	// EventReconnected: the reconnect loop reached Nodes, ring members
	// memberlist had reported dead or did not know, with a memberlist
	// join; EventAlive follows once memberlist has taken them back.
	EventReconnected
)

var eventNames = map[EventKind]string{
	EventInserted:    "inserted",
	EventRemoved:     "removed",
	EventUpdated:     "updated",
	EventConflict:    "conflict",
	EventSelfRemoved: "self-removed",
	EventLeft:        "left",
	EventAlive:       "alive",
	EventSuspect:     "suspect",
	EventDead:        "dead",
	EventMemberLeft:  "member-left",
	EventSend:        "send",
	EventRefused:     "refused",
	EventReconnected: "reconnected",
}

// String returns the kind's name, such as "inserted".
func (k EventKind) String() string {
	if s, ok := eventNames[k]; ok {
		return s
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// MarshalText implements encoding.TextMarshaler with [EventKind.String].
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Event is one notification from a [Ring]; see [Ring.Subscribe].
type Event struct {
	Kind   EventKind
	Nodes  []notp.Node // the nodes concerned, in ID order for ring changes
	RingID string      // the ring the event happened in
	Time   time.Time   // when it was published (Config.Now)
}
