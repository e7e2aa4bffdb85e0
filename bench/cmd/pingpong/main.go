//go:build unix

// Command pingpong measures the floor under kernelbench: the round trip of
// a 32-byte message between two Go processes over loopback TCP, one
// goroutine on each side, no framing, no hand-off. With -spin both sides
// busy-poll the socket (non-blocking reads in a loop) instead of sleeping
// in the runtime's poller, which shows what the operating system's
// wake-up costs.
//
// Usage:
//
//	go run ./cmd/pingpong [-n 20000] [-spin]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"
)

const msgSize = 32

func main() {
	serve := flag.Bool("serve", false, "internal: run as the echoing server process")
	spin := flag.Bool("spin", false, "busy-poll the socket on both sides")
	n := flag.Int("n", 20000, "round trips to measure")
	flag.Parse()
	if err := run(*serve, *spin, *n); err != nil {
		fmt.Fprintln(os.Stderr, "pingpong:", err)
		os.Exit(1)
	}
}

func run(serve, spin bool, n int) error {
	if n <= 0 {
		return errors.New("-n must be positive")
	}
	if serve {
		return server(spin)
	}
	args := []string{"-serve"}
	if spin {
		args = append(args, "-spin")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	in, err := cmd.StdinPipe() // the server exits when this closes
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Wait()
	defer in.Close()
	var addr string
	if _, err := fmt.Fscanln(out, &addr); err != nil {
		return fmt.Errorf("server address: %w", err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	read, err := reader(c.(*net.TCPConn), spin)
	if err != nil {
		return err
	}
	buf := make([]byte, msgSize)
	lat := make([]time.Duration, 0, n)
	for range n + 1000 { // the first 1000 warm up
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			return err
		}
		if err := read(buf); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
	}
	lat = lat[1000:]
	slices.Sort(lat)
	fmt.Printf("spin=%v round trips=%d p50=%.1fµs p99=%.1fµs\n", spin, n,
		micros(lat[len(lat)/2]), micros(lat[len(lat)*99/100]))
	return nil
}

func server(spin bool) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	go func() { io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	read, err := reader(c.(*net.TCPConn), spin)
	if err != nil {
		return err
	}
	buf := make([]byte, msgSize)
	for {
		if err := read(buf); err != nil {
			return nil // the client hung up
		}
		if _, err := c.Write(buf); err != nil {
			return nil
		}
	}
}

// reader returns a function that reads exactly len(buf) bytes from c,
// either through the runtime's poller or by busy-polling.
func reader(c *net.TCPConn, spin bool) (func([]byte) error, error) {
	if !spin {
		return func(buf []byte) error { _, err := io.ReadFull(c, buf); return err }, nil
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return func(buf []byte) error {
		for got := 0; got < len(buf); {
			var n int
			var rerr error
			if err := rc.Read(func(fd uintptr) bool {
				n, rerr = syscall.Read(int(fd), buf[got:])
				return true // never wait: poll again
			}); err != nil {
				return err
			}
			switch {
			case rerr == syscall.EAGAIN || rerr == syscall.EINTR:
			case rerr != nil:
				return rerr
			case n == 0:
				return io.EOF
			default:
				got += n
			}
		}
		return nil
	}, nil
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
