package cluster

import (
	"context"
	"sync"

	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/gossip"
)

// Bounds of the event log the events command reads (notp-cli monitor).
const (
	// maxLoggedEvents is how many of the latest ring and health events a
	// node keeps; a monitor that falls further behind is told how many it
	// missed.
	maxLoggedEvents = 1024
	// maxEventNodes is the most nodes an event lists; More counts the rest.
	maxEventNodes = 16
	// eventBuffer is the subscription's channel size; events beyond it are
	// dropped by gossip (counted in its Stats.EventsDropped).
	eventBuffer = 256
)

// eventLevels maps gossip's event kinds to levels; the others are info.
var eventLevels = map[gossip.EventKind]string{
	gossip.EventSend:        "debug",
	gossip.EventSuspect:     "warn",
	gossip.EventDead:        "warn",
	gossip.EventRefused:     "warn",
	gossip.EventSelfRemoved: "warn",
}

// eventLog keeps the latest maxLoggedEvents events in a ring buffer.
type eventLog struct {
	mu   sync.Mutex
	buf  []command.Event // buf[(seq-1) % maxLoggedEvents] holds event seq
	next uint64          // the seq the next event gets (the first is 1)
}

func newEventLog() *eventLog { return &eventLog{next: 1} }

func (l *eventLog) add(e gossip.Event) {
	le := command.Event{Time: e.Time.UTC(), Level: eventLevels[e.Kind], Kind: e.Kind.String(), Ring: e.RingID, Nodes: []string{}}
	if le.Level == "" {
		le.Level = "info"
	}
	for i, n := range e.Nodes {
		if i == maxEventNodes {
			le.More = len(e.Nodes) - maxEventNodes
			break
		}
		le.Nodes = append(le.Nodes, n.String())
	}
	l.append(le)
}

// append numbers le and keeps it.
func (l *eventLog) append(le command.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	le.Seq = l.next
	l.next++
	if len(l.buf) < maxLoggedEvents {
		l.buf = append(l.buf, le)
		return
	}
	l.buf[(le.Seq-1)%maxLoggedEvents] = le
}

// since returns at most command.MaxEventsPerReply events from seq since on. since
// 0, or a cursor beyond the last event (from before the node restarted),
// returns no events and the cursor of the next one.
func (l *eventLog) since(since uint64) command.EventsData {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := command.EventsData{Next: l.next, Events: []command.Event{}}
	if since == 0 || since >= l.next {
		return d
	}
	oldest := l.next - uint64(len(l.buf))
	if since < oldest {
		d.Missed = oldest - since
		since = oldest
	}
	for seq := since; seq < l.next && len(d.Events) < command.MaxEventsPerReply; seq++ {
		d.Events = append(d.Events, l.buf[(seq-1)%maxLoggedEvents])
	}
	d.Next = since + uint64(len(d.Events))
	return d
}

// feed copies the ring's events into l until the subscription's channel
// is closed.
func (l *eventLog) feed(events <-chan gossip.Event) {
	for e := range events {
		l.add(e)
	}
}

func (c *commandServer) events(_ context.Context, a command.Args) command.Reply {
	if c.eventLog == nil {
		return ok(command.EventsData{Events: []command.Event{}})
	}
	return ok(c.eventLog.since(a.Since))
}
