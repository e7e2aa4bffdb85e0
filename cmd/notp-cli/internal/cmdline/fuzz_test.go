package cmdline

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/notp-go/notp/command"
)

// FuzzParseCommand feeds command lines, split as the shell splits them, to
// ParseRequest: it never panics, fails only with a usage error or an
// unknown command, and what it accepts is a valid payload for the server
// (valid nodes, a weight that is 0 or positive) that survives the wire
// encoding unchanged; a raft payload is one the node's decoder accepts.
func FuzzParseCommand(f *testing.F) {
	for _, line := range []string{
		"inspect", "get a", "meet a h1 1", "leave --force",
		"insert a h1 1 -f -w 3", "insert a h1 1 --weight=7", "minsert a h1 1 b h2 65535 -f",
		"update a h1 1 5 -f", "mremove a h1 1 -- b h2 2", "remove a h1 0", "insert a h1 1 -w -1",
		"nosuch x", "raft peers", "raft transfer n2 --group g", "raft remove-peer n1", "raft snapshot --group=a",
		"raft vote",
	} {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			return
		}
		req, err := ParseRequest(fields[0], fields[1:])
		a := req.Args
		if err != nil {
			var ue *UsageError
			if !errors.Is(err, ErrUnknownCommand) && !errors.As(err, &ue) {
				t.Fatalf("%q: error %v is neither a usage error nor an unknown command", line, err)
			}
			return
		}
		if req.Payload != nil {
			// The node must accept what the CLI sends.
			if _, err := command.DecodeRaftArgs(req.Payload); err != nil {
				t.Fatalf("%q: the node would refuse the payload: %v", line, err)
			}
			return
		}
		if a.Weight < 0 {
			t.Fatalf("%q: weight %d", line, a.Weight)
		}
		if a.Node != nil && a.Node.Validate() != nil {
			t.Fatalf("%q: accepted invalid node %+v", line, *a.Node)
		}
		for _, n := range a.Nodes {
			if err := n.Validate(); err != nil {
				t.Fatalf("%q: accepted invalid node %+v: %v", line, n, err)
			}
		}
		b, err := command.EncodeArgs(a)
		if err != nil {
			t.Fatalf("%q: encoding %+v: %v", line, a, err)
		}
		back, err := command.DecodeArgs(b)
		if err != nil {
			t.Fatalf("%q: the server would refuse %+v: %v", line, a, err)
		}
		if len(a.Nodes) == 0 {
			a.Nodes = nil // omitempty drops an empty list
		}
		if len(back.Nodes) == 0 {
			back.Nodes = nil
		}
		if !reflect.DeepEqual(a, back) {
			t.Fatalf("%q: %+v became %+v on the wire", line, a, back)
		}
	})
}

// FuzzParseFlags feeds argument vectors (NUL-separated) to ParseFlags: it
// never panics, fails only with errors wrapping errFlags, and what it
// accepts has a valid target node and a positive timeout. Vectors naming a
// path are skipped: the key and TLS flags read the files they name.
func FuzzParseFlags(f *testing.F) {
	for _, argv := range []string{
		"", "-h", "-I\x00a\x00-H\x00h\x00-p\x0017022\x00inspect", "--port=0", "-p\x0070000",
		"-a\x00cookie\x00--timeout\x00-1s\x00get\x00a", "--timeout=1ms\x00keygen", "-I\x00a b",
		"--tls-insecure-skip-verify\x00ping", "--nosuch",
	} {
		f.Add(argv)
	}
	f.Setenv(EnvCookie, "")
	f.Fuzz(func(t *testing.T, argv string) {
		if strings.ContainsAny(argv, "/\\") {
			return
		}
		var args []string
		if argv != "" {
			args = strings.Split(argv, "\x00")
		}
		o, err := ParseFlags(args)
		if err != nil {
			if !errors.Is(err, ErrFlags) {
				t.Fatalf("%q: error %v does not wrap ErrFlags", args, err)
			}
			return
		}
		if o.Help {
			return
		}
		if err := o.Target.Validate(); err != nil {
			t.Fatalf("%q: accepted invalid target %+v: %v", args, o.Target, err)
		}
		if o.Timeout <= 0 {
			t.Fatalf("%q: accepted timeout %v", args, o.Timeout)
		}
	})
}
