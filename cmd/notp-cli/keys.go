package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// keygenBytes is the size of a generated cookie: 256 random bits.
const keygenBytes = 32

// newCookie returns a fresh cookie: 32 random bytes as 64 lowercase hex
// digits, safe in shells, environment variables and files.
func newCookie() string {
	b := make([]byte, keygenBytes)
	rand.Read(b) // never fails (crypto/rand panics rather than return short)
	return hex.EncodeToString(b)
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
