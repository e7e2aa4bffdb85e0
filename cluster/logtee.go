package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/notp-go/notp/command"
)

// maxLogMessage bounds the message (with its attributes) of a log line
// kept in the event log, in bytes: a panic's stack is cut.
const maxLogMessage = 1024

// logTee is a slog.Handler that passes every record to next and copies
// those at Info and above into the node's event log, as events of kind
// "log", so that notp-cli monitor streams the node's log lines beside its
// ring events. Debug lines are not kept: they are many, and would push
// the ring events out of the log's 1024 slots.
type logTee struct {
	next  slog.Handler
	log   *eventLog
	attrs string // attributes of WithAttrs, rendered, with group prefixes
	group string // the WithGroup prefix, "a.b." or ""
}

func newLogTee(next slog.Handler, l *eventLog) *logTee { return &logTee{next: next, log: l} }

func (h *logTee) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelInfo || h.next.Enabled(ctx, level)
}

func (h *logTee) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo {
		h.log.addLog(r.Time, logLevel(r.Level), h.render(r))
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *logTee) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		writeAttr(&b, h.group, a)
	}
	c.attrs, c.next = b.String(), h.next.WithAttrs(as)
	return &c
}

func (h *logTee) WithGroup(name string) slog.Handler {
	c := *h
	c.group, c.next = h.group+name+".", h.next.WithGroup(name)
	return &c
}

// render is the record's message and attributes as one line, cut at
// maxLogMessage bytes.
func (h *logTee) render(r slog.Record) string {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.group, a)
		return b.Len() < maxLogMessage
	})
	s := b.String()
	if len(s) > maxLogMessage {
		s = strings.ToValidUTF8(s[:maxLogMessage], "") + "…"
	}
	return s
}

func writeAttr(b *strings.Builder, group string, a slog.Attr) {
	if a.Equal(slog.Attr{}) {
		return
	}
	fmt.Fprintf(b, " %s%s=%q", group, a.Key, a.Value.Resolve().String())
}

// logLevel is the event level of a log record's level.
func logLevel(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warn"
	}
	return "info"
}

var _ slog.Handler = (*logTee)(nil)

// addLog adds a log line to the event log.
func (l *eventLog) addLog(t time.Time, level, msg string) {
	l.append(command.Event{Time: t.UTC(), Level: level, Kind: "log", Nodes: []string{}, Message: msg})
}
