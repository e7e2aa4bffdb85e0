package genserver

import "github.com/notp-go/notp/internal/event"

// EventKind says which lifecycle change an [Event] reports.
type EventKind uint8

// Lifecycle event kinds. They are never user events: nothing received from
// the network can produce one.
const (
	// EventStart: Start registered the server and started its goroutine.
	EventStart EventKind = iota + 1
	// EventPause: Pause took effect; requests are dropped until Resume.
	EventPause
	// EventResume: Resume took effect.
	EventResume
	// EventStop: Stop finished: the name is unregistered and the actor
	// goroutine has exited.
	EventStop
	// EventIdle: the actor finished a message and found its mailbox empty.
	EventIdle
)

var kindNames = [...]string{"", "start", "pause", "resume", "stop", "idle"}

// String returns the notp name of the event: "start", "pause", "resume",
// "stop" or "idle".
func (k EventKind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return "unknown"
}

// Event is a lifecycle notification.
type Event struct {
	Kind EventKind
	// Name is the server's name when the event happened (an unnamed
	// server's EventStop carries the random id it had while running).
	Name string
}

// subscribers fans lifecycle events out to buffered channels through the
// module's event bus, never blocking the emitter: a full channel loses the
// event and dropped counts it. A buffer ≤ 0 gets event.DefaultBuffer.
type subscribers struct {
	bus     event.Bus[Event]
	dropped func()
}

func (s *subscribers) add(buf int) (<-chan Event, func()) {
	return s.bus.Subscribe(buf)
}

func (s *subscribers) emit(e Event) {
	for range s.bus.Publish(e) {
		s.dropped()
	}
}
