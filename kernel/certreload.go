package kernel

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCertCheckInterval is the default of NewCertReloader's interval.
const DefaultCertCheckInterval = 10 * time.Second

// MaxCertFileSize bounds each certificate and key file a CertReloader
// reads, in bytes: a PEM chain of a few certificates is a few KiB.
const MaxCertFileSize = 1 << 20

// CertReloader serves the TLS certificate in a pair of PEM files and
// re-reads them when they change, so that a node takes a renewed
// certificate without a restart. Set it on Config.TLS with [CertReloader.Apply]:
// every handshake (accepted or dialed) then asks it for the certificate,
// and at most once per interval it compares the files' size and
// modification time with the last read and reloads them if either
// changed. [CertReloader.Reload] reloads at once (examples/node calls it
// on SIGHUP). Connections that are open keep the certificate they were
// made with; only new handshakes present the new one.
//
// A pair that fails to load (a half-written file, a key that does not
// match its certificate) leaves the current certificate in use; the error
// is kept in Err and retried at the next check. Methods are safe for
// concurrent use.
type CertReloader struct {
	certFile, keyFile string
	interval          time.Duration
	now               func() time.Time

	cert    atomic.Pointer[tls.Certificate]
	reloads atomic.Uint64

	mu      sync.Mutex // one check or reload at a time; guards the fields below
	checked time.Time
	stamp   [2]fileStamp
	err     error
}

// fileStamp is what a check compares: a file's size and modification
// time.
type fileStamp struct {
	size int64
	mod  time.Time
}

// NewCertReloader loads the certificate in certFile (PEM, the leaf first,
// then any intermediates) and its private key in keyFile, and returns a
// reloader that checks them at most every interval (0 = 10 s). It fails
// if they do not load.
func NewCertReloader(certFile, keyFile string, interval time.Duration) (*CertReloader, error) {
	if interval <= 0 {
		interval = DefaultCertCheckInterval
	}
	r := &CertReloader{certFile: certFile, keyFile: keyFile, interval: interval, now: time.Now}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Apply makes c get its certificates from r, as a server and as a client.
func (r *CertReloader) Apply(c *tls.Config) {
	c.Certificates = nil
	c.GetCertificate = r.GetCertificate
	c.GetClientCertificate = r.GetClientCertificate
}

// GetCertificate implements tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.current(), nil
}

// GetClientCertificate implements tls.Config.GetClientCertificate.
func (r *CertReloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.current(), nil
}

// Certificate returns the certificate in use.
func (r *CertReloader) Certificate() *tls.Certificate { return r.cert.Load() }

// Reloads returns how many times the files were loaded after the first.
func (r *CertReloader) Reloads() uint64 { return r.reloads.Load() }

// Err returns the error of the last load, nil if it succeeded.
func (r *CertReloader) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// current returns the certificate, checking the files first when the
// interval has passed since the last check.
func (r *CertReloader) current() *tls.Certificate {
	if r.mu.TryLock() { // a handshake never waits for another's check
		if r.now().Sub(r.checked) >= r.interval {
			r.checkLocked()
		}
		r.mu.Unlock()
	}
	return r.cert.Load()
}

// Reload reads the files now, whether or not they changed. On error the
// current certificate stays in use.
func (r *CertReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamp, err := r.stamps()
	if err == nil {
		err = r.loadLocked(stamp)
	}
	r.checked, r.err = r.now(), err
	return err
}

func (r *CertReloader) checkLocked() {
	r.checked = r.now()
	stamp, err := r.stamps()
	if err == nil && stamp == r.stamp {
		return
	}
	if err == nil {
		err = r.loadLocked(stamp)
	}
	r.err = err
}

func (r *CertReloader) stamps() ([2]fileStamp, error) {
	var s [2]fileStamp
	for i, name := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return s, fmt.Errorf("kernel: tls certificate: %w", err)
		}
		s[i] = fileStamp{size: fi.Size(), mod: fi.ModTime()}
	}
	return s, nil
}

// loadLocked reads and parses the pair; r.mu held.
func (r *CertReloader) loadLocked(stamp [2]fileStamp) error {
	certPEM, err := readBounded(r.certFile)
	if err != nil {
		return err
	}
	keyPEM, err := readBounded(r.keyFile)
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("kernel: tls certificate %s with key %s: %w", r.certFile, r.keyFile, err)
	}
	if r.cert.Swap(&cert) != nil {
		r.reloads.Add(1)
	}
	r.stamp = stamp
	return nil
}

// errCertFileTooLarge: a certificate or key file over MaxCertFileSize.
var errCertFileTooLarge = errors.New("kernel: tls certificate file too large")

func readBounded(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("kernel: tls certificate: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxCertFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("kernel: tls certificate: read %s: %w", name, err)
	}
	if len(b) > MaxCertFileSize {
		return nil, fmt.Errorf("%w: %s is over %d bytes", errCertFileTooLarge, name, MaxCertFileSize)
	}
	return b, nil
}
