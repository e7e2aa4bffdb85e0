package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/notp-go/notp"
)

// nodeProc is one running examples/node process.
type nodeProc struct {
	cmd    *exec.Cmd
	node   notp.Node
	log    *tailBuffer // the node's stderr (its log), last lines only
	exited chan struct{}
	err    error // cmd.Wait's result, set before exited closes
}

// nodeSpec is how to start a node.
type nodeSpec struct {
	bin    string // the examples/node binary
	id     string
	port   int // 0: a free one
	cookie string
	flush  string // -flush file; "" for none
}

// startNode starts the node and returns once the process runs (not once it
// answers: see legit.waitReady).
func startNode(spec nodeSpec) (*nodeProc, error) {
	port := spec.port
	if port == 0 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	args := []string{"-id", spec.id, "-host", "127.0.0.1", "-port", strconv.Itoa(port), "-log", "warn"}
	if spec.flush != "" {
		args = append(args, "-flush", spec.flush)
	}
	cmd := exec.Command(spec.bin, args...)
	// The cookie goes in the environment, not in the process list.
	cmd.Env = append(os.Environ(), "NOTP_COOKIE="+spec.cookie)
	p := &nodeProc{cmd: cmd, node: notp.Node{ID: spec.id, Host: "127.0.0.1", Port: port},
		log: &tailBuffer{max: 64 << 10}, exited: make(chan struct{})}
	cmd.Stderr = p.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("attack: start node: %w", err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// pid is the node's process id.
func (p *nodeProc) pid() int { return p.cmd.Process.Pid }

// alive reports whether the process still runs.
func (p *nodeProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill kills the process and waits for it.
func (p *nodeProc) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// stop asks the node to stop (SIGTERM, which flushes its ring) and waits up
// to timeout, then kills it. It returns the process's exit error.
func (p *nodeProc) stop(timeout time.Duration) error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("attack: the node did not exit within %v of SIGTERM and was killed", timeout)
	}
}

// lastLogLine returns the node's last log line that contains substr ("" if none).
func (p *nodeProc) lastLogLine(substr string) string {
	lines := strings.Split(strings.TrimSpace(p.log.String()), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], substr) {
			return lines[i]
		}
	}
	return ""
}

// freePort returns a port on 127.0.0.1 free for both TCP and UDP (the
// node's failure detector uses the same UDP port) at the time of the call.
func freePort() (int, error) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("attack: free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		uc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		uc.Close()
		return port, nil
	}
	return 0, errors.New("attack: no port free for both TCP and UDP")
}

// checkLoopback refuses any target but 127.0.0.1: the attacks must never
// leave the machine.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		return fmt.Errorf("attack: refusing target %q: only 127.0.0.1 is attacked", addr)
	}
	return nil
}

// tailBuffer is an io.Writer keeping about the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max/2:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// procSample is one reading of a process's resources.
type procSample struct {
	rssKB, hwmKB int64
	threads      int
	fds          int
}

// readProc reads /proc/PID/status and counts /proc/PID/fd.
func readProc(pid int) (procSample, error) {
	var s procSample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			s.rssKB = n
		case "VmHWM":
			s.hwmKB = n
		case "Threads":
			s.threads = int(n)
		}
	}
	s.fds = countFDs(pid)
	return s, nil
}

// countFDs counts the open file descriptors of pid (-1: unknown).
func countFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// sampleEvery is the sampling period of a sampler.
const sampleEvery = 20 * time.Millisecond

// peaks are the maxima a sampler saw.
type peaks struct {
	rssKB, hwmKB int64
	threads      int
	fds          int
	samples      int
}

// sample reads pid every sampleEvery until ctx ends or the process is gone,
// and returns the maxima.
func sample(ctx context.Context, pid int) peaks {
	var p peaks
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		s, err := readProc(pid)
		if err != nil {
			return p // the process is gone
		}
		p.samples++
		p.rssKB = max(p.rssKB, s.rssKB)
		p.hwmKB = max(p.hwmKB, s.hwmKB)
		p.threads = max(p.threads, s.threads)
		p.fds = max(p.fds, s.fds)
		select {
		case <-ctx.Done():
			return p
		case <-t.C:
		}
	}
}
