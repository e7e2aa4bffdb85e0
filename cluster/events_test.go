package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/gossip"
)

func testEvent(kind gossip.EventKind, nodes int) gossip.Event {
	e := gossip.Event{Kind: kind, RingID: "r", Time: time.Unix(1700000000, 0)}
	for i := range nodes {
		e.Nodes = append(e.Nodes, notp.Node{ID: fmt.Sprint("n", i), Host: "h", Port: 1})
	}
	return e
}

// The event log keeps the latest maxLoggedEvents events, hands them out
// command.MaxEventsPerReply at a time from a cursor, counts what a slow reader
// missed, lists at most maxEventNodes nodes and maps kinds to levels.
func TestEventLog(t *testing.T) {
	l := newEventLog()
	if d := l.since(0); d.Next != 1 || len(d.Events) != 0 {
		t.Fatalf("empty log: %+v", d)
	}
	l.add(testEvent(gossip.EventInserted, 2))
	l.add(testEvent(gossip.EventDead, maxEventNodes+3))
	l.add(testEvent(gossip.EventSend, 1))
	d := l.since(1)
	if d.Next != 4 || d.Missed != 0 || len(d.Events) != 3 {
		t.Fatalf("since 1: %+v", d)
	}
	for i, want := range []struct {
		kind, level string
		nodes, more int
	}{{"inserted", "info", 2, 0}, {"dead", "warn", maxEventNodes, 3}, {"send", "debug", 1, 0}} {
		e := d.Events[i]
		if e.Seq != uint64(i+1) || e.Kind != want.kind || e.Level != want.level || len(e.Nodes) != want.nodes || e.More != want.more || e.Ring != "r" {
			t.Fatalf("event %d = %+v, want %+v", i, e, want)
		}
	}
	if d := l.since(0); d.Next != 4 || len(d.Events) != 0 {
		t.Fatalf("since 0 (start from now): %+v", d)
	}
	if d := l.since(99); d.Next != 4 || len(d.Events) != 0 {
		t.Fatalf("cursor beyond the log: %+v", d)
	}
	for range 2 * maxLoggedEvents {
		l.add(testEvent(gossip.EventAlive, 1))
	}
	last := uint64(3 + 2*maxLoggedEvents)
	oldest := last - maxLoggedEvents + 1
	d = l.since(2)
	if d.Missed != oldest-2 || len(d.Events) != command.MaxEventsPerReply || d.Events[0].Seq != oldest || d.Next != oldest+command.MaxEventsPerReply {
		t.Fatalf("slow reader: missed %d, %d events from %d, next %d", d.Missed, len(d.Events), d.Events[0].Seq, d.Next)
	}
	for cur, n := d.Next, 0; ; n++ {
		d := l.since(cur)
		if len(d.Events) == 0 {
			if cur != last+1 || n != maxLoggedEvents/command.MaxEventsPerReply-1 {
				t.Fatalf("drained at %d after %d more replies", cur, n)
			}
			break
		}
		if d.Events[0].Seq != cur || d.Missed != 0 {
			t.Fatalf("since %d: first %d, missed %d", cur, d.Events[0].Seq, d.Missed)
		}
		cur = d.Next
	}
}

// The events command serves the log through the command server.
func TestCommandEvents(t *testing.T) {
	h := newCmdHarness(t, 5*time.Second, false)
	if d := decodeData[command.EventsData](t, h.call(command.Events, command.Args{Since: 1})); d.Next != 0 || len(d.Events) != 0 {
		t.Fatalf("without a log: %+v", d)
	}
	h.cs.eventLog = newEventLog()
	h.cs.eventLog.add(testEvent(gossip.EventInserted, 1))
	d := decodeData[command.EventsData](t, h.call(command.Events, command.Args{Since: 1}))
	if d.Next != 2 || len(d.Events) != 1 || d.Events[0].Kind != "inserted" || d.Events[0].Nodes[0] != "n0@h:1" {
		t.Fatalf("events = %+v", d)
	}
}
