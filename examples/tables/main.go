// Command tables shows notp's durable table: it writes a scalar, a set and
// a hash, closes the table, reopens it from its files and prints what
// came back, then shows a type error and an in-memory table.
//
//	go run ./examples/tables              # in a fresh temporary directory
//	go run ./examples/tables -dir data    # keep the files; run twice to see the visits count grow
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/notp-go/notp/table"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tables", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory of the table's files (default: a new temporary directory, removed at exit)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "notp-tables-")
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	if err := demo(*dir, stdout); err != nil {
		fmt.Fprintln(stderr, "tables:", err)
		return 1
	}
	return 0
}

func demo(dir string, out io.Writer) error {
	cfg := table.Config{Dir: dir, Name: "demo", Sync: table.SyncAlways}
	t, err := table.Open(cfg)
	if err != nil {
		return err
	}
	visits := 0
	if v, err := t.Get("visits"); err == nil {
		visits, _ = strconv.Atoi(string(v))
	}
	// Each write below returns once it is fsynced.
	writes := []error{
		t.Set("visits", []byte(strconv.Itoa(visits+1))),
		t.SSet("nodes", "node-a"),
		t.SSet("nodes", "node-b"),
		t.HSet("job:42", "owner", []byte("node-a")),
		t.HSet("job:42", "state", []byte("running")),
	}
	if err := errors.Join(writes...); err != nil {
		t.Close()
		return err
	}
	fmt.Fprintf(out, "wrote 5 changes to %s\n", dir)
	if err := t.Close(); err != nil {
		return err
	}

	t, err = table.Open(cfg)
	if err != nil {
		return err
	}
	defer t.Close()
	fmt.Fprintln(out, "reopened:")
	err = t.ForEach(context.Background(), func(key string, v table.Value) error {
		switch v.Kind {
		case table.KindScalar:
			fmt.Fprintf(out, "  %-7s scalar %s\n", key, v.Bytes)
		case table.KindSet:
			fmt.Fprintf(out, "  %-7s set    %v\n", key, v.Members)
		case table.KindHash:
			fmt.Fprintf(out, "  %-7s hash   owner=%s state=%s\n", key, v.Fields["owner"], v.Fields["state"])
		}
		return nil
	})
	if err != nil {
		return err
	}

	// A set operation on a hash is refused and changes nothing.
	if err := t.SSet("job:42", "x"); errors.Is(err, table.ErrWrongType) {
		fmt.Fprintln(out, "refused:", err)
	}

	// The same API without Dir is an in-memory table.
	mem, err := table.Open(table.Config{})
	if err != nil {
		return err
	}
	defer mem.Close()
	if err := mem.HSet("cache", "k", []byte("v")); err != nil {
		return err
	}
	v, err := mem.HGet("cache", "k")
	fmt.Fprintf(out, "in memory: cache.k = %s\n", v)
	return err
}
