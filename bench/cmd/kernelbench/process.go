package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"
)

// client is one connected benchmark client of a system.
type client interface {
	// Call sends payload to the server's echo handler and waits for the echo.
	Call(ctx context.Context, payload []byte) error
	// Cast sends payload one way to the server's counting handler.
	Cast(payload []byte) error
	// CastStats asks the server how many casts it has received so far and
	// its wall clock (Unix nanoseconds) when it answered. The request travels
	// behind the casts already sent on the same connection.
	CastStats(ctx context.Context) (count int64, nowNano int64, err error)
	// Close disconnects and releases the client.
	Close() error
}

// system is one benchmarked configuration.
type system struct {
	// config describes the configuration in the results.
	config string
	// serve starts the server in this (child) process and returns the
	// address it listens on and a function that stops it.
	serve func(ctx context.Context, sec *secrets) (addr string, stop func() error, err error)
	// dial connects a client to a server at addr.
	dial func(ctx context.Context, addr string, sec *secrets) (client, error)
}

// registry holds the systems; each system's file adds itself in init.
var registry = map[string]system{}

// Environment variables carrying the shared secrets from parent to child.
const (
	envCookie = "KERNELBENCH_COOKIE"
	envCert   = "KERNELBENCH_CERT"
	envKey    = "KERNELBENCH_KEY"
)

// secrets are shared by the client and the server: the cluster cookie and a
// self-signed certificate that both sides present and trust.
type secrets struct {
	cookie  string
	certPEM []byte
	keyPEM  []byte
}

// newSecrets makes a random cookie and a fresh self-signed ECDSA certificate
// for 127.0.0.1 and localhost.
func newSecrets() (*secrets, error) {
	var c [16]byte
	if _, err := rand.Read(c[:]); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "kernelbench"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &secrets{
		cookie:  hex.EncodeToString(c[:]),
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func (s *secrets) environ() []string {
	return []string{
		envCookie + "=" + s.cookie,
		envCert + "=" + string(s.certPEM),
		envKey + "=" + string(s.keyPEM),
	}
}

func secretsFromEnv() (*secrets, error) {
	s := &secrets{
		cookie:  os.Getenv(envCookie),
		certPEM: []byte(os.Getenv(envCert)),
		keyPEM:  []byte(os.Getenv(envKey)),
	}
	if s.cookie == "" || len(s.certPEM) == 0 || len(s.keyPEM) == 0 {
		return nil, errors.New("missing " + envCookie + ", " + envCert + " or " + envKey + " in the environment")
	}
	return s, nil
}

// tlsConfig is the mutual-TLS configuration both sides use: present the
// shared certificate, trust only it, and require it from peers.
func (s *secrets) tlsConfig() (*tls.Config, error) {
	cert, err := tls.X509KeyPair(s.certPEM, s.keyPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.certPEM) {
		return nil, errors.New("bad certificate PEM")
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ServerName:   "localhost",
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// serveMain is the child process: it starts the server of one system, prints
// "ready <addr>" and serves until stdin reaches EOF or ctx is cancelled.
func serveMain(ctx context.Context, name, cpuProfile string, stdin io.Reader, stdout io.Writer) error {
	serve := registry[name].serve
	if s, ok := helperServers[name]; ok {
		serve = s
	}
	if serve == nil {
		return fmt.Errorf("unknown system %q", name)
	}
	sec, err := secretsFromEnv()
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	addr, stop, err := serve(ctx, sec)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "ready %s\n", addr); err != nil {
		stop()
		return err
	}
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, stdin)
		close(eof)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return stop()
}

// serverProc is a running child server process.
type serverProc struct {
	addr  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
	once  sync.Once
	err   error
}

// readyTimeout bounds how long the parent waits for the child's ready line.
const readyTimeout = 20 * time.Second

// startServer re-executes this binary as the server of system name.
func startServer(ctx context.Context, name, cpuProfile string, gomaxprocs int, sec *secrets, stderr io.Writer) (*serverProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-serve", name}
	if cpuProfile != "" {
		args = append(args, "-cpuprofile", cpuProfile)
	}
	if gomaxprocs > 0 {
		args = append(args, "-gomaxprocs", strconv.Itoa(gomaxprocs))
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), sec.environ()...)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serverProc{cmd: cmd, stdin: stdin, done: make(chan error, 1)}

	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			line := sc.Text()
			if first && strings.HasPrefix(line, "ready ") {
				ready <- strings.TrimPrefix(line, "ready ")
				first = false
				continue
			}
			fmt.Fprintf(stderr, "[%s server] %s\n", name, line)
		}
		close(ready)
		// Wait only after stdout is drained, as os/exec requires.
		p.done <- cmd.Wait()
	}()

	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case addr, ok := <-ready:
		if ok {
			p.addr = addr
			return p, nil
		}
		p.stop()
		return nil, fmt.Errorf("server process exited before it was ready: %v", p.err)
	case <-timer.C:
		p.stop()
		return nil, errors.New("server process not ready in time")
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
}

// stopGrace is how long the child may take to exit (flushing its profile)
// after its stdin is closed, before it is killed.
const stopGrace = 10 * time.Second

// stop closes the child's stdin, waits for it to exit and kills it if it
// takes longer than stopGrace. It is idempotent and returns the child's exit
// error.
func (p *serverProc) stop() error {
	p.once.Do(func() {
		p.stdin.Close()
		t := time.NewTimer(stopGrace)
		defer t.Stop()
		select {
		case p.err = <-p.done:
		case <-t.C:
			p.cmd.Process.Kill()
			p.err = <-p.done
			if p.err == nil {
				p.err = errors.New("server process killed after timeout")
			}
		}
	})
	return p.err
}
