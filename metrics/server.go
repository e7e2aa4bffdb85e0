package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/notp-go/notp/internal/lifecycle"
)

// Path is the one URL path a Server answers; every other path is 404.
const Path = "/metrics"

// The Server's budgets. A scraper sends one small GET every few seconds;
// anything slower, larger or more numerous is not a scraper.
const (
	// ReadHeaderTimeout bounds the time to read a request's headers.
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout bounds the time to read a whole request.
	ReadTimeout = 10 * time.Second
	// ScrapeTimeout bounds the time to gather and encode the metrics.
	ScrapeTimeout = 10 * time.Second
	// WriteTimeout bounds the time to write a response.
	WriteTimeout = ScrapeTimeout + 5*time.Second
	// IdleTimeout closes kept-alive connections idle for that long.
	IdleTimeout = time.Minute
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes = 8 << 10
	// MaxConns bounds the connections open at once; more wait in the
	// listen backlog.
	MaxConns = 16
	// MaxScrapes bounds the scrapes gathered at once; more get 503.
	MaxScrapes = 4
)

// Server serves a prometheus.Gatherer's metrics over HTTP at [Path]. Create
// it with Listen and stop it with Close.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{} // closed when Serve returned
	err  error         // Serve's error other than http.ErrServerClosed; read after done

	closeOnce sync.Once
	closeErr  error
}

// Listen listens on the TCP address addr ("127.0.0.1:9100"; port 0 picks
// a free port, see Addr) and serves g's metrics at [Path] in the
// Prometheus text format (or OpenMetrics when asked), within the budgets
// above. log receives gathering and serving errors; nil discards them.
func Listen(addr string, g prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	if g == nil {
		return nil, errors.New("metrics: Listen with a nil gatherer")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:            errorLog{log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: MaxScrapes,
		Timeout:             ScrapeTimeout,
	}))
	s := &Server{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: ReadHeaderTimeout,
			ReadTimeout:       ReadTimeout,
			WriteTimeout:      WriteTimeout,
			IdleTimeout:       IdleTimeout,
			MaxHeaderBytes:    MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		ln:   newLimitListener(ln, MaxConns),
		done: make(chan struct{}),
	}
	go s.serve(log)
	return s, nil
}

func (s *Server) serve(log *slog.Logger) {
	defer close(s.done)
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics: serve failed", "addr", s.ln.Addr().String(), "err", err)
		s.err = fmt.Errorf("metrics: serve: %w", err)
	}
}

// Addr returns the address the Server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops listening, closes the connections of scrapes in flight at
// once and waits for the serving goroutine: Stop with an already cancelled
// context. It is idempotent.
func (s *Server) Close() error { return lifecycle.StopNow(s.Stop) }

// Stop stops listening, lets scrapes in flight finish until ctx ends
// (then closes their connections) and waits for the serving goroutine. It
// is idempotent; later calls (Close's included) return the first call's
// result.
func (s *Server) Stop(ctx context.Context) error {
	s.closeOnce.Do(func() {
		err := s.srv.Shutdown(ctx)
		if err != nil {
			err = errors.Join(fmt.Errorf("metrics: shutdown: %w", err), s.srv.Close())
		}
		<-s.done
		s.closeErr = errors.Join(err, s.err)
	})
	return s.closeErr
}

// errorLog adapts a slog.Logger to promhttp's Logger.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) { l.log.Warn("metrics: scrape error", "err", fmt.Sprint(v...)) }

// limitListener lets at most cap(sem) accepted connections be open at
// once: Accept waits for a slot before accepting, so the excess waits in
// the kernel's backlog instead of costing a goroutine each.
type limitListener struct {
	net.Listener
	sem  chan struct{}
	done chan struct{}
	once sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its listener's slot back once, on the first Close.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
