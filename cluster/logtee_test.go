package cluster

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// The tee passes every record on and keeps those at Info and above, with
// their attributes (groups prefixed), at their level, cut at
// maxLogMessage; Debug lines are not kept.
func TestLogTee(t *testing.T) {
	var out bytes.Buffer
	l := newEventLog()
	log := slog.New(newLogTee(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}), l))
	log = log.With("node", "a").WithGroup("g")
	log.Debug("chatty", "n", 1)
	log.Info("key installed", "key_id", "0123456789abcdef")
	log.Error("failed", "err", strings.Repeat("x", 2*maxLogMessage))
	if !strings.Contains(out.String(), "chatty") || !strings.Contains(out.String(), "key installed") {
		t.Fatalf("records not passed on:\n%s", out.String())
	}
	d := l.since(1)
	if len(d.Events) != 2 {
		t.Fatalf("kept %+v, want the info and error lines", d.Events)
	}
	e := d.Events[0]
	if e.Kind != "log" || e.Level != "info" || e.Message != `key installed node="a" g.key_id="0123456789abcdef"` {
		t.Fatalf("info line kept as %+v", e)
	}
	if e := d.Events[1]; e.Level != "error" || len(e.Message) > maxLogMessage+len("…") || !strings.HasPrefix(e.Message, "failed node=") {
		t.Fatalf("error line kept as level %s, %d bytes", e.Level, len(e.Message))
	}
}

// A node's log lines reach the events command (notp-cli monitor).
func TestNodeLogsInEvents(t *testing.T) {
	n, err := New(Config{Node: node("logs", 0), Cookie: "cluster logs test cookie 0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	n.log.Warn("operator should look", "why", "test")
	d := n.events.since(1)
	if len(d.Events) == 0 || d.Events[len(d.Events)-1].Message != `operator should look why="test"` {
		t.Fatalf("events %+v", d.Events)
	}
}
