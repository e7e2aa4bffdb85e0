package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/notp-go/notp/cmd/notp-cli/internal/cmdline"
	"github.com/notp-go/notp/cmd/notp-cli/internal/textout"
	"github.com/notp-go/notp/command"
)

// formatReply renders a reply as 2-space-indented JSON with a trailing
// newline: {"ok": true, "data": ...} or {"ok": false, "error": {...}}.
// Data is the server's JSON, re-indented but otherwise kept as sent (key
// order included; no HTML escaping).
func formatReply(r command.Reply) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		// Only invalid Data can fail, and DecodeReply rejects it.
		b.Reset()
		enc.Encode(command.Fail(codeInvalidReply, "reply data is not valid JSON: "+err.Error()))
	}
	return b.Bytes()
}

// defaultBarWidth is the width of the longest bar when the output is not
// a terminal.
const defaultBarWidth = 40

// formatOwnership renders the data of an ownership reply as a bar chart:
// one line per node with its id, a bar of █ proportional to its share (the
// largest share fills the available width) and the percentage. termWidth
// is the terminal's width in columns, or 0 for the default bar width. It
// reports false when data is not a list of {id, share}.
func formatOwnership(data []byte, termWidth int) ([]byte, bool) {
	var shares []command.Share
	if err := json.Unmarshal(data, &shares); err != nil {
		return nil, false
	}
	idw, largest := 0, 0.0
	for _, s := range shares {
		if s.ID == "" || s.Share < 0 || s.Share > 1+1e-9 {
			return nil, false
		}
		idw = max(idw, utf8.RuneCountInString(s.ID))
		largest = max(largest, s.Share)
	}
	barw := defaultBarWidth
	if termWidth > 0 {
		// id, two spaces, bar, two spaces, "100.0%", one spare column.
		barw = max(termWidth-idw-2-2-6-1, 10)
	}
	var b bytes.Buffer
	if len(shares) == 0 {
		b.WriteString("(no nodes)\n")
	}
	for _, s := range shares {
		n := 0
		if largest > 0 {
			n = int(s.Share/largest*float64(barw) + 0.5)
		}
		if n == 0 && s.Share > 0 {
			n = 1
		}
		pad := idw - utf8.RuneCountInString(s.ID)
		fmt.Fprintf(&b, "%s%s  %s%s  %5.1f%%\n", s.ID, strings.Repeat(" ", pad),
			strings.Repeat("█", n), strings.Repeat(" ", barw-n), s.Share*100)
	}
	return b.Bytes(), true
}

// writeAll writes b, ignoring errors: there is nowhere to report them.
func writeAll(w io.Writer, b []byte) { w.Write(b) }

// filterNodes applies --status and --id to the data of a nodes reply: a
// list of {id, host, port, health}. Data of another shape is an error.
func filterNodes(r command.Reply, o cmdline.Options) command.Reply {
	if !r.OK || (o.Status == "" && o.IDRe == nil) {
		return r
	}
	var nodes []command.NodeHealth
	if err := r.Decode(&nodes); err != nil {
		return failure(codeInvalidReply, "nodes reply is not a list of nodes: %v", err)
	}
	kept := nodes[:0]
	for _, n := range nodes {
		if (o.Status == "" || n.Health == o.Status) && (o.IDRe == nil || o.IDRe.MatchString(n.ID)) {
			kept = append(kept, n)
		}
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return failure(codeInvalidReply, "encode the filtered nodes: %v", err)
	}
	r.Data = b
	return r
}

// render prints a reply in format ("json" or "text"); chart draws an
// ownership reply as a bar chart (termWidth as for formatOwnership).
func render(name string, r command.Reply, format string, chart bool, termWidth int) []byte {
	if r.OK && name == command.Ownership && (chart || format == "text") {
		if b, ok := formatOwnership(r.Data, termWidth); ok {
			return b
		}
	}
	if format == "text" {
		return formatText(r)
	}
	return formatReply(r)
}

// formatText renders a reply for people: an error as "error: <message>
// (<code>)" with one line per field; data as a table when it is a list of
// objects, "key  value" lines when it is an object (nested objects and
// lists indented below their key), and a plain value otherwise.
func formatText(r command.Reply) []byte {
	var b bytes.Buffer
	if !r.OK {
		fmt.Fprintf(&b, "error: %s", r.Error.Message)
		if r.Error.Code != "" {
			fmt.Fprintf(&b, " (%s)", r.Error.Code)
		}
		b.WriteByte('\n')
		keys := make([]string, 0, len(r.Error.Fields))
		for k := range r.Error.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "  %s: %s\n", k, r.Error.Fields[k])
		}
		return b.Bytes()
	}
	if len(r.Data) == 0 {
		return []byte("ok\n")
	}
	if err := textout.Write(&b, r.Data); err != nil {
		return formatReply(r) // DecodeReply checked it; keep it readable anyway
	}
	return b.Bytes()
}
