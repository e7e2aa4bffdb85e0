package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// envCookie is the environment variable the cookie is read from when
// neither --key nor --key-file is given.
const envCookie = "NOTP_COOKIE"

// maxKeyFileSize bounds a --key-file, in bytes: a cookie is tens of bytes,
// so anything larger is the wrong file.
const maxKeyFileSize = 4 << 10

// keygenBytes is the size of a generated cookie: 256 random bits.
const keygenBytes = 32

// newCookie returns a fresh cookie: 32 random bytes as 64 lowercase hex
// digits, safe in shells, environment variables and files.
func newCookie() string {
	b := make([]byte, keygenBytes)
	rand.Read(b) // never fails (crypto/rand panics rather than return short)
	return hex.EncodeToString(b)
}

// keySources are the places the cookie can come from.
type keySources struct {
	key    string // --key / -a
	keySet bool   // --key / -a was given, even as ""
	file   string // --key-file; "" = not given
	env    string // $NOTP_COOKIE
}

// resolve picks the cookie: --key (or -a) if given, else the --key-file's
// content, else $NOTP_COOKIE, else "" (a node without a cookie). A key
// file loses one trailing line ending; an unreadable, empty or oversized
// file is an error.
func (s keySources) resolve() (string, error) {
	switch {
	case s.keySet:
		return s.key, nil
	case s.file != "":
		return readKeyFile(s.file)
	}
	return s.env, nil
}

// readKeyFile reads a cookie from path, at most maxKeyFileSize bytes.
func readKeyFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--key-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return "", fmt.Errorf("--key-file: %s: %w", path, err)
	}
	if len(b) > maxKeyFileSize {
		return "", fmt.Errorf("--key-file: %s is larger than %d bytes; is it the right file?", path, maxKeyFileSize)
	}
	key := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if key == "" {
		return "", fmt.Errorf("--key-file: %s is empty", path)
	}
	return key, nil
}

// errKeygenArgs: keygen takes no arguments.
var errKeygenArgs = errors.New("keygen takes no arguments")

// keygenHelp describes the keygen command.
const keygenHelp = "Prints a new random cluster cookie (256 bits as 64 hex digits) and sends nothing."

// keygen serves "notp-cli keygen": one cookie on stdout.
func keygen(args []string, stdout, stderr io.Writer) int {
	if len(args) != 0 {
		fmt.Fprintf(stderr, "notp-cli: %v\nUsage: notp-cli keygen\n", errKeygenArgs)
		return exitUsage
	}
	fmt.Fprintln(stdout, newCookie())
	return exitOK
}
