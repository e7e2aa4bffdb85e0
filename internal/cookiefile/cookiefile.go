// Package cookiefile reads a cluster cookie from a file, for the commands
// (notp-cli, examples/node) that take one so that the cookie need not
// appear on a command line, where process lists show it.
package cookiefile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxSize bounds a cookie file, in bytes: a cookie is tens of bytes, so
// anything larger is the wrong file.
const MaxSize = 4 << 10

// EnvVar is the environment variable commands read the cookie from when
// no flag gives one.
const EnvVar = "NOTP_COOKIE"

// ErrEmpty: the file holds no cookie.
var ErrEmpty = errors.New("cookiefile: file is empty")

// ErrTooLarge: the file is larger than MaxSize.
var ErrTooLarge = errors.New("cookiefile: file too large")

// Read returns the cookie in the file at path: its content without one
// trailing line ending ("\n" or "\r\n"). An unreadable file, an empty one
// and one larger than MaxSize are errors naming the path.
func Read(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cookiefile: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return "", fmt.Errorf("cookiefile: %s: %w", path, err)
	}
	if len(b) > MaxSize {
		return "", fmt.Errorf("%w: %s is larger than %d bytes; is it the right file?", ErrTooLarge, path, MaxSize)
	}
	cookie := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if cookie == "" {
		return "", fmt.Errorf("%w: %s", ErrEmpty, path)
	}
	return cookie, nil
}
