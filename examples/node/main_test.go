package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/notp-go/notp"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-id", "a"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := notp.Node{ID: "a", Host: "127.0.0.1", Port: 7022}
	if o.node != want || o.ring != "ring" || o.cookie != "" || o.flush != "" || o.meet != nil || o.level != slog.LevelInfo {
		t.Fatalf("defaults: %+v", o)
	}
	o, err = parseFlags([]string{"-id", "b", "-host", "10.0.0.2", "-port", "7100", "-cookie", "s", "-ring", "r",
		"-flush", "/tmp/b.ring", "-meet", "a@10.0.0.1:7022", "-log", "debug"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.node != (notp.Node{ID: "b", Host: "10.0.0.2", Port: 7100}) || o.cookie != "s" || o.ring != "r" ||
		o.flush != "/tmp/b.ring" || *o.meet != (notp.Node{ID: "a", Host: "10.0.0.1", Port: 7022}) || o.level != slog.LevelDebug {
		t.Fatalf("all flags: %+v", o)
	}
}

// Invalid flags exit with status 2 and say what is wrong.
func TestBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "-id is required"},
		{[]string{"-id", "a", "-port", "0"}, "-port 0"},
		{[]string{"-id", "a", "-port", "65536"}, "-port 65536"},
		{[]string{"-id", "a", "-port", "x"}, "invalid value"},
		{[]string{"-id", "a@b"}, "'@'"},
		{[]string{"-id", "a", "-host", ""}, "empty host"},
		{[]string{"-id", "a", "-ring", ""}, "-ring"},
		{[]string{"-id", "a", "-meet", "127.0.0.1:7022"}, "-meet"},
		{[]string{"-id", "a", "-meet", "b@127.0.0.1:0"}, "-meet"},
		{[]string{"-id", "a", "-log", "loud"}, "-log"},
		{[]string{"-id", "a", "extra"}, "unexpected arguments"},
		{[]string{"-nope"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(context.Background(), tt.args, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("stderr %q lacks %q", stderr.String(), tt.want)
			}
			_, err := parseFlags(tt.args, &bytes.Buffer{})
			if !errors.Is(err, errUsage) {
				t.Fatalf("parseFlags: %v, want errUsage", err)
			}
		})
	}
	if code := run(context.Background(), []string{"-h"}, &bytes.Buffer{}); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
}
