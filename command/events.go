package command

import "time"

// MaxEventsPerReply is the most events one events reply carries; a client
// that gets a full reply polls again at once.
const MaxEventsPerReply = 256

// Event is one ring or health event in the events command's data.
type Event struct {
	// Seq numbers the node's events from 1, in order.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Level is "debug" (this node sent its state), "info" (ring changes
	// and merged concurrent changes, nodes alive, reconnected or leaving)
	// or "warn" (dead or suspect nodes, refused entries, this node removed
	// by another); a log line (Kind "log") has its record's level: "info",
	// "warn" or "error".
	Level string `json:"level"`
	// Kind is gossip's event kind, such as "inserted" or "dead".
	Kind string `json:"kind"`
	Ring string `json:"ring"`
	// Nodes are the nodes concerned, as id@host:port, at most 16; More
	// counts those left out.
	Nodes []string `json:"nodes"`
	More  int      `json:"more,omitempty"`
	// Message is a log line's message and attributes (kind "log", level
	// info, warn or error), at most 1 KiB.
	Message string `json:"message,omitempty"`
}

// EventsData is the data of the events command.
type EventsData struct {
	// Next is the cursor to pass as since to get the events after these.
	Next uint64 `json:"next"`
	// Missed counts the events after since that the node no longer keeps.
	Missed uint64  `json:"missed"`
	Events []Event `json:"events"`
}
