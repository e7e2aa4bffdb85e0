package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/notp-go/notp/cmd/notp-cli/internal/cmdline"
	"github.com/notp-go/notp/command"
)

// monitorPoll is how often monitor asks the node for new events.
const monitorPoll = 500 * time.Millisecond

// monitorHelp is the one-line summary of monitor.
const monitorHelp = "Streams the node's ring and health events until Ctrl-C (in the shell: until Enter)."

// monitorDesc is monitor's full description.
const monitorDesc = monitorHelp + " It polls the node every 500ms for the events it logged " +
	"(it keeps its latest 1024) and prints those at --level or above (default info): " +
	"debug adds this node's state sends; warn keeps dead and suspect nodes, refused entries " +
	"and this node's removal. The node's own log lines at info and above come too (kind log), " +
	"each at its level (error keeps only errors). One-shot mode prints a JSON object per event unless --format text; " +
	"the shell prints text unless --format json."

// monitorSynopsis is monitor's usage.
const monitorSynopsis = "monitor [--level debug|info|warn|error] [--format text|json]"

// levels are the event levels, least severe first ("error" only for the
// node's log lines).
var levels = []string{"debug", "info", "warn", "error"}

// monitorOpts are monitor's options.
type monitorOpts struct {
	level  int    // index in levels: events below it are not printed
	format string // "", "text" or "json"
}

// parseMonitor reads monitor's options.
func parseMonitor(args []string) (monitorOpts, error) {
	mo := monitorOpts{level: 1}
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(args[i], "=")
		if name != "--level" && name != "--format" {
			return mo, fmt.Errorf("monitor: unexpected argument %q", args[i])
		}
		if !hasVal {
			if i+1 >= len(args) {
				return mo, fmt.Errorf("monitor: option %s needs a value", name)
			}
			i++
			val = args[i]
		}
		if name == "--format" {
			f, err := cmdline.ParseFormat(val)
			if err != nil {
				return mo, fmt.Errorf("monitor: %w", err)
			}
			mo.format = f
			continue
		}
		if mo.level = slices.Index(levels, val); mo.level < 0 {
			return mo, fmt.Errorf("monitor: --level %q: want debug, info, warn or error", val)
		}
	}
	return mo, nil
}

// monitorEvents polls the node's events from now on and writes those at
// or above the level to w, one line each: text, or a JSON object per line
// for format json. It returns when ctx ends (an ok reply) or a poll fails
// (that reply). Each poll is bounded by the client's timeout.
func monitorEvents(ctx context.Context, c *client, mo monitorOpts, format string, w io.Writer) command.Reply {
	var cursor uint64
	for {
		r := c.do(ctx, command.Events, command.Args{Since: cursor})
		if ctx.Err() != nil {
			return command.Reply{OK: true}
		}
		if !r.OK {
			return r
		}
		var d command.EventsData
		if err := r.Decode(&d); err != nil {
			return failure(codeInvalidReply, "events reply: %v", err)
		}
		var b strings.Builder
		if d.Missed > 0 {
			if format == "json" {
				fmt.Fprintf(&b, "{\"missed\":%d}\n", d.Missed)
			} else {
				fmt.Fprintf(&b, "(%d events missed: the node keeps only its latest)\n", d.Missed)
			}
		}
		for _, e := range d.Events {
			if slices.Index(levels, e.Level) < mo.level {
				continue
			}
			if format == "json" {
				line, _ := json.Marshal(e)
				b.Write(line)
				b.WriteByte('\n')
				continue
			}
			if e.Kind == "log" {
				fmt.Fprintf(&b, "%s  %-5s  %-12s  %s\n", e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), e.Level, e.Kind, sanitizeLine(e.Message))
				continue
			}
			fmt.Fprintf(&b, "%s  %-5s  %-12s  ring=%s  %s", e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), e.Level, e.Kind, e.Ring, strings.Join(e.Nodes, " "))
			if e.More > 0 {
				fmt.Fprintf(&b, " (+%d more)", e.More)
			}
			b.WriteByte('\n')
		}
		if b.Len() > 0 {
			io.WriteString(w, b.String())
		}
		cursor = d.Next
		if len(d.Events) >= command.MaxEventsPerReply {
			continue
		}
		select {
		case <-ctx.Done():
			return command.Reply{OK: true}
		case <-time.After(monitorPoll):
		}
	}
}

// oneShotMonitor runs monitor in one-shot mode: JSON lines unless --format
// text; exit 0 when a signal ends it, 1 when a poll fails.
func oneShotMonitor(ctx context.Context, o cmdline.Flags, stdout, stderr io.Writer) int {
	mo, err := parseMonitor(o.Args)
	if err != nil {
		reportSynopsis(stderr, err, monitorSynopsis)
		return exitUsage
	}
	format := cmp.Or(mo.format, o.Format, "json")
	return withClient(ctx, o, "", format, stdout, func(c *client) command.Reply {
		r := monitorEvents(ctx, c, mo, format, stdout)
		if !r.OK {
			writeAll(stdout, render("", r, format, false, 0))
		}
		return r
	})
}

// sanitizeLine makes a node's log message one printable line: control
// characters (a forged message could move the terminal's cursor) become
// spaces.
func sanitizeLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}
