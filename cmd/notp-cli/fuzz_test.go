package main

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseFlags feeds argument vectors (NUL-separated) to parseFlags: it
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
	f.Setenv(envCookie, "")
	f.Fuzz(func(t *testing.T, argv string) {
		if strings.ContainsAny(argv, "/\\") {
			return
		}
		var args []string
		if argv != "" {
			args = strings.Split(argv, "\x00")
		}
		o, err := parseFlags(args)
		if err != nil {
			if !errors.Is(err, errFlags) {
				t.Fatalf("%q: error %v does not wrap errFlags", args, err)
			}
			return
		}
		if o.help {
			return
		}
		if err := o.target.Validate(); err != nil {
			t.Fatalf("%q: accepted invalid target %+v: %v", args, o.target, err)
		}
		if o.timeout <= 0 {
			t.Fatalf("%q: accepted timeout %v", args, o.timeout)
		}
	})
}
