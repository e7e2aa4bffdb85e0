package cluster

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/kernel"
)

// A contributed command is served beside the built-ins: it gets the raw
// payload and the caller, runs under the command timeout, is logged as
// its result says, and is gone after unregister.
func TestHandleCommandServesAndUnregisters(t *testing.T) {
	logs := &logCapture{}
	h := newCmdHarnessLog(t, 100*time.Millisecond, false, slog.New(logs))
	type seen struct {
		args     string
		from     string
		deadline time.Duration
	}
	got := make(chan seen, 1)
	unregister, err := h.cs.handleExt("demo", func(ctx context.Context, args []byte, from kernel.From) CommandResult {
		dl, _ := ctx.Deadline()
		got <- seen{string(args), from.Node.ID, time.Until(dl)}
		if string(args) == "block" {
			<-ctx.Done()
			return CommandResult{Reply: command.Fail(command.CodeFailed, ctx.Err().Error())}
		}
		if string(args) == "panic" {
			panic("boom")
		}
		rep, _ := command.OK("done")
		return CommandResult{Reply: rep, Mutating: true, Attrs: []any{"target", "x"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	r := h.callFrom(h.client, "demo", []byte("hello"))
	if d := decodeData[string](t, r); d != "done" {
		t.Fatalf("reply %q", d)
	}
	s := <-got
	if s.args != "hello" || s.from != h.client.Self().ID || s.deadline <= 0 || s.deadline > 100*time.Millisecond {
		t.Fatalf("handler saw %+v", s)
	}
	logged := logs.infoAttrs("mutating command")
	if len(logged) != 1 || logged[0]["command"] != "demo" || logged[0]["target"] != "x" || logged[0]["ok"] != "true" ||
		logged[0]["peer"] != h.client.Self().ID {
		t.Fatalf("mutating log %v", logged)
	}
	// The command timeout ends a handler that blocks.
	mustFail(t, h.callFrom(h.client, "demo", []byte("block")), command.CodeFailed, context.DeadlineExceeded.Error())
	<-got
	// A panic becomes a FAILED reply and the server goes on.
	r = h.callFrom(h.client, "demo", []byte("panic"))
	<-got
	if r.OK || !strings.Contains(r.Error.Message, "boom") {
		t.Fatalf("panic reply %+v", r)
	}
	mustOK(t, h.call(command.Ping, command.Args{}))

	unregister()
	unregister() // idempotent
	mustFail(t, h.callFrom(h.client, "demo", nil), command.CodeUnknownCommand, "")
}

// Names are checked: malformed, built-in or taken names are refused, and
// an old unregister does not remove a newer registration.
func TestHandleCommandNames(t *testing.T) {
	h := newCmdHarness(t, time.Second, false)
	ok := func(context.Context, []byte, kernel.From) CommandResult {
		rep, _ := command.OK(1)
		return CommandResult{Reply: rep}
	}
	for _, name := range []string{"", "Bad", "has space", strings.Repeat("a", 65), command.Ping, command.Keys} {
		if _, err := h.cs.handleExt(name, ok); !errors.Is(err, ErrCommandName) {
			t.Errorf("name %q: err %v, want ErrCommandName", name, err)
		}
	}
	if _, err := h.cs.handleExt("demo", nil); !errors.Is(err, ErrCommandName) {
		t.Errorf("nil handler: err %v", err)
	}
	un1, err := h.cs.handleExt("demo", ok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.cs.handleExt("demo", ok); !errors.Is(err, ErrCommandName) {
		t.Fatalf("second registration: %v", err)
	}
	un1()
	un2, err := h.cs.handleExt("demo", ok)
	if err != nil {
		t.Fatal(err)
	}
	un1()
	mustOK(t, h.callFrom(h.client, "demo", nil))
	un2()
}

// The member rule of the built-in commands holds for contributed ones:
// the handler does not run for a refused caller, and the refusal is
// logged at Info.
func TestHandleCommandMemberRefusal(t *testing.T) {
	logs := &logCapture{}
	h := newCmdHarnessLog(t, time.Second, false, slog.New(logs))
	ran := make(chan struct{}, 1)
	if _, err := h.cs.handleExt("demo", func(context.Context, []byte, kernel.From) CommandResult {
		ran <- struct{}{}
		return CommandResult{}
	}); err != nil {
		t.Fatal(err)
	}
	mustFail(t, h.callFrom(h.server, "demo", nil), command.CodeNotAllowed, "")
	select {
	case <-ran:
		t.Fatal("handler ran for a refused caller")
	default:
	}
	if l := logs.infoAttrs("mutating command"); len(l) != 1 || l[0]["code"] != command.CodeNotAllowed {
		t.Fatalf("refusal log %v", l)
	}
	// A handler's ok:false reply without an error is made a FAILED one.
	r := h.callFrom(h.client, "demo", nil)
	<-ran
	mustFail(t, r, command.CodeFailed, "")
}
