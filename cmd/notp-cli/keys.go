package main

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/notp-go/notp/cmd/notp-cli/internal/cmdline"
	"github.com/notp-go/notp/command"
)

// keygenBytes is the size of a generated cookie: 256 random bits.
const keygenBytes = 32

// newCookie returns a fresh cookie: 32 random bytes as 64 lowercase hex
// digits, safe in shells, environment variables and files.
func newCookie() string {
	b := make([]byte, keygenBytes)
	rand.Read(b) // never fails (crypto/rand panics rather than return short)
	return hex.EncodeToString(b)
}

// errKeygenArgs: keygen takes no arguments besides --format.
var errKeygenArgs = errors.New("keygen takes no arguments")

// keygenSynopsis is keygen's usage after "Usage:".
const keygenSynopsis = "keygen [--format text|json]"

// keygenSummary is keygen's line in the list of commands; keygenHelp
// describes it in full.
const (
	keygenSummary = "Prints a new random cluster cookie (256 bits as 64 hex digits) and sends nothing."
	keygenHelp    = keygenSummary + " --format text (the default) prints the cookie alone on a line; --format json prints {\"ok\": true, \"data\": {\"key\": \"<cookie>\"}}."
)

// keygenData is the data of keygen's JSON output.
type keygenData struct {
	Key string `json:"key"`
}

// parseKeygen reads keygen's arguments: only --format text|json (as
// "--format json" or "--format=json"). It returns "" when not given.
func parseKeygen(args []string) (string, error) {
	pos, format, err := cmdline.SplitFormat(args)
	if err != nil {
		return "", fmt.Errorf("keygen: %w", err)
	}
	if len(pos) > 0 {
		return "", fmt.Errorf("%w, got %q", errKeygenArgs, pos[0])
	}
	return format, nil
}

// formatKeygen renders a new cookie in format: alone on a line for text
// (and ""), as an ok reply whose data is {"key": ...} for json.
func formatKeygen(format string) []byte {
	key := newCookie()
	if format != "json" {
		return []byte(key + "\n")
	}
	data, _ := json.Marshal(keygenData{Key: key})
	return formatReply(command.Reply{OK: true, Data: data})
}

// keygen serves "notp-cli keygen": one cookie on stdout, as text unless
// --format json (keygen's own --format wins over the global one).
func keygen(o cmdline.Flags, stdout, stderr io.Writer) int {
	format, err := parseKeygen(o.Args)
	if err != nil {
		fmt.Fprintf(stderr, "notp-cli: %v\nUsage: notp-cli [flags] %s\n", err, keygenSynopsis)
		return exitUsage
	}
	writeAll(stdout, formatKeygen(cmp.Or(format, o.Format, "text")))
	return exitOK
}
