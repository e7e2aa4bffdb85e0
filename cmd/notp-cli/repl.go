package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/notp-go/notp/cmd/notp-cli/internal/cmdline"
	"github.com/notp-go/notp/command"
)

// prompt is the shell's prompt.
const prompt = "> "

// monitorEvery is how often the shell checks its link to print
// "Disconnected from" / "Connected to".
const monitorEvery = 50 * time.Millisecond

// shell is the interactive mode.
type shell struct {
	c      *client
	id     string    // the target's id, for messages
	out    io.Writer // safe for concurrent use; one Write per message
	width  int       // terminal width, 0 when not a terminal
	format string    // --format: "text", "json" or "" (JSON, ownership as a chart)
	// raw is the terminal under a term.Terminal, nil without one: when
	// Ctrl-D or Ctrl-C ends the shell, the prompt line is ended there
	// (through the Terminal the prompt would be drawn again).
	raw io.Writer
	// ask and res talk to the reading goroutine (see loop); ctxEnded and
	// readErr tell loop how a command that read input (monitor) ended.
	ask      chan struct{}
	res      chan readResult
	ctxEnded bool
	readErr  error
}

// runShell connects (a ping must succeed), then reads commands until
// exit, EOF or ctx ends. Lines are edited with x/term's Terminal when
// stdin and stdout are terminals and read plainly otherwise.
func runShell(ctx context.Context, o cmdline.Flags, stdin io.Reader, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "Connecting to %s at %s\n", o.Target.ID, o.Target.Addr())
	c, err := newClient(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "notp-cli: start the CLI's kernel: %v\n", err)
		return exitFail
	}
	defer c.Close()
	if r := c.do(ctx, command.Ping, command.Args{}); !r.OK {
		fmt.Fprintf(stderr, "Cannot connect to %s: %s (%s)\n", o.Target.ID, r.Error.Message, r.Error.Code)
		return exitFail
	}
	fmt.Fprintf(stdout, "Connected to %s\n", o.Target.ID)

	sh := &shell{c: c, id: o.Target.ID, format: o.Format}
	var read func() (string, error)
	if in, out, ok := terminals(stdin, stdout); ok {
		t, restore, err := sh.useTerminal(in, out)
		if err != nil {
			fmt.Fprintf(stderr, "notp-cli: terminal: %v\n", err)
			return exitFail
		}
		defer restore()
		read = t.ReadLine
	} else {
		sh.out = &lockedWriter{w: stdout}
		read = sh.plainReader(stdin)
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { sh.monitor(done) })
	defer wg.Wait()
	defer close(done)
	return sh.loop(ctx, read)
}

// terminals returns stdin and stdout as files when both are terminals.
func terminals(stdin io.Reader, stdout io.Writer) (*os.File, *os.File, bool) {
	in, ok1 := stdin.(*os.File)
	out, ok2 := stdout.(*os.File)
	if !ok1 || !ok2 || !term.IsTerminal(int(in.Fd())) || !term.IsTerminal(int(out.Fd())) {
		return nil, nil, false
	}
	return in, out, true
}

// useTerminal puts stdin in raw mode and routes the shell's output through
// a term.Terminal (see attachTerminal).
func (sh *shell) useTerminal(in, out *os.File) (t *term.Terminal, restore func(), err error) {
	state, err := term.MakeRaw(int(in.Fd()))
	if err != nil {
		return nil, nil, err
	}
	w, h, err := term.GetSize(int(out.Fd()))
	if err != nil {
		w, h = 0, 0
	}
	t = sh.attachTerminal(struct {
		io.Reader
		io.Writer
	}{in, out}, w, h)
	return t, func() { term.Restore(int(in.Fd()), state) }, nil
}

// plainReader reads lines from r without editing, writing the prompt
// before each, for input that is not a terminal (a pipe, a script).
func (sh *shell) plainReader(r io.Reader) func() (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	return func() (string, error) {
		sh.out.Write([]byte(prompt))
		if sc.Scan() {
			return sc.Text(), nil
		}
		if err := sc.Err(); err != nil {
			return "", err
		}
		return "", io.EOF
	}
}

// attachTerminal makes a term.Terminal over rw the shell's output and
// line editor: history with the arrow keys and TAB completion of command
// names (several candidates are listed). width and height are the
// terminal's size, 0 if unknown.
func (sh *shell) attachTerminal(rw io.ReadWriter, width, height int) *term.Terminal {
	t := term.NewTerminal(rw, prompt)
	if width > 0 {
		t.SetSize(width, height)
		sh.width = width
	}
	t.AutoCompleteCallback = func(line string, pos int, key rune) (string, int, bool) {
		nl, np, cands := complete(line, pos, key)
		if len(cands) > 1 {
			fmt.Fprintln(t, strings.Join(cands, "  "))
		}
		return nl, np, nl != ""
	}
	sh.out = t
	sh.raw = rw
	return t
}

// loop reads and runs lines. Reading happens on its own goroutine so that
// ctx (a signal) ends the shell even while a read blocks; that goroutine
// ends when it is next asked to read or when stdin ends. The loop waits
// for it unless ctx ended with a read still blocked.
func (sh *shell) loop(ctx context.Context, read func() (string, error)) int {
	sh.ask = make(chan struct{})
	sh.res = make(chan readResult, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range sh.ask {
			line, err := read()
			sh.res <- readResult{line, err}
			if err != nil {
				return
			}
		}
	})
	for {
		line, err, ended := sh.nextLine(ctx)
		if !ended && err == nil && sh.exec(ctx, line) {
			continue
		}
		close(sh.ask)
		if ended || sh.ctxEnded {
			return exitOK // a read may still block: do not wait for it
		}
		wg.Wait()
		if err == nil {
			err = sh.readErr
		}
		switch {
		case errors.Is(err, io.EOF) && sh.raw != nil:
			io.WriteString(sh.raw, "\r\n")
		case err != nil && !errors.Is(err, io.EOF):
			sh.printf("notp-cli: read: %v\n", err)
		}
		return exitOK
	}
}

// readResult is one line read, or the error that ended reading.
type readResult struct {
	line string
	err  error
}

// nextLine asks the reading goroutine for a line and waits for it or for
// ctx to end (ended).
func (sh *shell) nextLine(ctx context.Context) (line string, err error, ended bool) {
	sh.ask <- struct{}{}
	select {
	case <-ctx.Done():
		return "", nil, true
	case r := <-sh.res:
		return r.line, r.err, false
	}
}

// monitor streams events until the next line (Enter), the end of input
// or ctx; it reports whether the shell goes on.
func (sh *shell) monitorUntilEnter(ctx context.Context, mo monitorOpts) bool {
	format := cmp.Or(mo.format, sh.format, "text")
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	sh.printf("Monitoring %s; press Enter to stop.\n", sh.id)
	go func() {
		defer close(done)
		if r := monitorEvents(mctx, sh.c, mo, format, sh.out); !r.OK {
			sh.out.Write(render("", r, format, false, 0))
		}
	}()
	_, err, ended := sh.nextLine(ctx)
	cancel()
	<-done
	switch {
	case ended:
		sh.ctxEnded = true
		return false
	case err != nil:
		sh.readErr = err
		return false
	}
	return true
}

// exec runs one line and reports whether the shell goes on.
func (sh *shell) exec(ctx context.Context, line string) bool {
	f := strings.Fields(line)
	if len(f) == 0 {
		return true
	}
	switch f[0] {
	case "exit":
		return false
	case "help":
		sh.help(f[1:])
		return true
	case "monitor":
		mo, err := parseMonitor(f[1:])
		if err != nil {
			sh.printf("%v\nUsage: %s\n", err, monitorSynopsis)
			return true
		}
		return sh.monitorUntilEnter(ctx, mo)
	case command.Keys:
		kr, err := cmdline.ParseKeys(f[1:])
		if err != nil {
			sh.printf("%v\nUsage: keys %s\n", err, cmdline.KeysUsage)
			return true
		}
		sh.out.Write(render(command.Keys, runKeys(ctx, sh.c, kr), cmp.Or(kr.Format, sh.format, "json"), false, sh.width))
		return true
	case "keygen":
		format, err := parseKeygen(f[1:])
		if err != nil {
			sh.printf("%v\nUsage: %s\n", err, keygenSynopsis)
			return true
		}
		sh.out.Write(formatKeygen(cmp.Or(format, sh.format, "text")))
		return true
	}
	req, err := cmdline.ParseRequest(f[0], f[1:])
	var ue *cmdline.UsageError
	switch {
	case errors.Is(err, cmdline.ErrUnknownCommand):
		sh.printf("Unknown command '%s'. Type 'help' to list the commands.\n", f[0])
		return true
	case errors.As(err, &ue):
		sh.printf("%v\nUsage: %s\n", err, ue.Spec.Synopsis())
		return true
	}
	r := sh.c.send(ctx, req)
	if req.Name == command.Nodes {
		r = filterNodes(r, req.Opts)
	}
	format := cmp.Or(req.Opts.Format, sh.format, "json")
	sh.out.Write(render(req.Name, r, format, req.Opts.Format == "" && sh.format == "", sh.width))
	return true
}

// help serves "help" and "help <command>".
func (sh *shell) help(args []string) {
	var b bytes.Buffer
	switch {
	case len(args) == 0:
		b.WriteString("Commands:\n")
		writeCommandList(&b, true)
	case args[0] == "help":
		b.WriteString("Usage: help [command]\n\nShows the commands, or the usage of one command.\n")
	case args[0] == "exit":
		b.WriteString("Usage: exit\n\nExits the shell (as does Ctrl-D).\n")
	case args[0] == "keygen":
		fmt.Fprintf(&b, "Usage: %s\n\n%s\n", keygenSynopsis, keygenHelp)
	case args[0] == "monitor":
		fmt.Fprintf(&b, "Usage: %s\n\n%s\n", monitorSynopsis, monitorDesc)
	default:
		s, ok := cmdline.Lookup(args[0])
		if !ok {
			fmt.Fprintf(&b, "Unknown command '%s'. Type 'help' to list the commands.\n", args[0])
			break
		}
		writeCommandHelp(&b, s)
	}
	sh.out.Write(b.Bytes())
}

// printf writes one message.
func (sh *shell) printf(format string, args ...any) {
	sh.out.Write(fmt.Appendf(nil, format, args...))
}

// monitor prints "Disconnected from <id>" once when the link goes down
// and "Connected to <id>" when it is back, until done is closed.
func (sh *shell) monitor(done <-chan struct{}) {
	t := time.NewTicker(monitorEvery)
	defer t.Stop()
	up := true
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		if now := sh.c.connected(); now != up {
			up = now
			if up {
				sh.printf("Connected to %s\n", sh.id)
			} else {
				sh.printf("Disconnected from %s\n", sh.id)
			}
		}
	}
}

// shellWords are the words TAB completes: the commands, help and exit.
var shellWords = append(slices.Clone(commandNames()), "help", "exit", "keygen", "members", "monitor")

func commandNames() []string {
	names := make([]string, len(cmdline.Specs))
	for i := range cmdline.Specs {
		names[i] = cmdline.Specs[i].Name
	}
	return names
}

// complete completes the command name under the cursor (the first word,
// or the second after "help"), or raft's operation after "raft", when key
// is TAB. It returns the new line and
// cursor position, or an empty line when there is nothing to complete, and
// the candidates when there are several.
func complete(line string, pos int, key rune) (string, int, []string) {
	if key != '\t' || pos > len(line) {
		return "", 0, nil
	}
	head := line[:pos]
	start := strings.LastIndexByte(head, ' ') + 1
	before := strings.Fields(head[:start])
	words := shellWords
	switch {
	case len(before) == 1 && before[0] == command.Raft:
		words = command.RaftOps // raft's operation
	case len(before) > 1 || (len(before) == 1 && before[0] != "help"):
		return "", 0, nil
	}
	word := head[start:]
	var cands []string
	for _, w := range words {
		if strings.HasPrefix(w, word) {
			cands = append(cands, w)
		}
	}
	switch len(cands) {
	case 0:
		return "", 0, nil
	case 1:
		done := head[:start] + cands[0] + " "
		return done + strings.TrimLeft(line[pos:], " "), len(done), nil
	}
	p := cands[0]
	for _, c := range cands[1:] {
		for !strings.HasPrefix(c, p) {
			p = p[:len(p)-1]
		}
	}
	if len(p) == len(word) {
		return "", 0, cands
	}
	done := head[:start] + p
	return done + line[pos:], len(done), nil
}

// lockedWriter serialises writes from the shell and its monitor.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
