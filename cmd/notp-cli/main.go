package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/notp-go/notp/cmd/notp-cli/internal/cmdline"
	"github.com/notp-go/notp/command"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0 // the reply was ok:true (or the shell ended normally)
	exitFail  = 1 // ok:false, unreachable node, timeout
	exitUsage = 2 // bad flags or arguments; nothing was sent
)

// run is the whole program: args are the command-line arguments without
// the program name. It returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := cmdline.ParseFlags(args)
	if err != nil {
		fmt.Fprintf(stderr, "notp-cli: %v\nRun 'notp-cli --help' for usage.\n", err)
		return exitUsage
	}
	switch {
	case o.Help:
		writeUsage(stdout)
		return exitOK
	case o.Cmd == "":
		return runShell(ctx, o, stdin, stdout, stderr)
	case o.Cmd == "help":
		return oneShotHelp(o.Args, stdout, stderr)
	case o.Cmd == "keygen":
		return keygen(o, stdout, stderr)
	case o.Cmd == "monitor":
		return oneShotMonitor(ctx, o, stdout, stderr)
	case o.Cmd == command.Keys:
		return oneShotKeys(ctx, o, stdout, stderr)
	}
	return oneShot(ctx, o, stdout, stderr)
}

// withClient runs a one-shot command: it starts the CLI's client, runs do
// (which prints the output) and maps do's reply to the exit code. When the
// client cannot start, it prints that failure as the command's reply (in
// format) instead.
func withClient(ctx context.Context, o cmdline.Flags, name, format string, stdout io.Writer, do func(*client) command.Reply) int {
	c, err := newClient(ctx, o)
	if err != nil {
		writeAll(stdout, render(name, failure(codeClient, "start the CLI's kernel: %v", err), format, false, 0))
		return exitFail
	}
	defer c.Close()
	if !do(c).OK {
		return exitFail
	}
	return exitOK
}

// oneShot sends one command and prints only the reply: as JSON unless
// --format text (the command's --format wins over the global one).
func oneShot(ctx context.Context, o cmdline.Flags, stdout, stderr io.Writer) int {
	req, err := cmdline.ParseRequest(o.Cmd, o.Args)
	if err != nil {
		reportUsage(stderr, err)
		return exitUsage
	}
	format := cmp.Or(req.Opts.Format, o.Format, "json")
	return withClient(ctx, o, req.Name, format, stdout, func(c *client) command.Reply {
		r := c.send(ctx, req)
		if req.Name == command.Nodes {
			r = filterNodes(r, req.Opts)
		}
		writeAll(stdout, render(req.Name, r, format, false, 0))
		return r
	})
}

// reportUsage explains a command-line error from cmdline.ParseCommand.
func reportUsage(w io.Writer, err error) {
	var ue *cmdline.UsageError
	if errors.As(err, &ue) {
		reportSynopsis(w, err, ue.Spec.Synopsis())
		return
	}
	fmt.Fprintf(w, "notp-cli: %v\nRun 'notp-cli --help' for the list of commands.\n", err)
}

// reportSynopsis explains a bad argument list with the command's synopsis.
func reportSynopsis(w io.Writer, err error, synopsis string) {
	fmt.Fprintf(w, "notp-cli: %v\nUsage: notp-cli [flags] %s\n", err, synopsis)
}

// oneShotHelp serves "notp-cli help [command]".
func oneShotHelp(args []string, stdout, stderr io.Writer) int {
	switch len(args) {
	case 0:
		writeUsage(stdout)
		return exitOK
	case 1:
		if args[0] == "keygen" {
			fmt.Fprintf(stdout, "Usage: %s\n\n%s\n", keygenSynopsis, keygenHelp)
			return exitOK
		}
		if args[0] == "monitor" {
			fmt.Fprintf(stdout, "Usage: %s\n\n%s\n", monitorSynopsis, monitorDesc)
			return exitOK
		}
		if s, ok := cmdline.Lookup(args[0]); ok {
			writeCommandHelp(stdout, s)
			return exitOK
		}
		fmt.Fprintf(stderr, "notp-cli: help: unknown command %q\n", args[0])
	default:
		fmt.Fprintln(stderr, "notp-cli: help takes at most one command")
	}
	return exitUsage
}
