package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/notp-go/notp/internal/cookiefile"
)

// envCookie is the environment variable the cookie is read from when
// neither --key nor --key-file is given.
const envCookie = cookiefile.EnvVar

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
		key, err := cookiefile.Read(s.file)
		if err != nil {
			return "", fmt.Errorf("--key-file: %w", err)
		}
		return key, nil
	}
	return s.env, nil
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
