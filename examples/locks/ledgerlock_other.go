//go:build !unix

package main

import (
	"fmt"
	"os"
	"time"
)

// lockLedger creates the directory at path as a lock, waiting up to 10 s
// for another holder to remove it, and returns its release. Where flock
// is missing, a process killed while it holds the lock leaves the
// directory behind: remove it by hand.
func lockLedger(path string) (unlock func(), err error) {
	deadline := time.Now().Add(10 * time.Second)
	for os.Mkdir(path, 0o700) != nil {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("ledger lock %s held for over 10 s (left by a killed process? remove it)", path)
		}
		time.Sleep(time.Millisecond)
	}
	return func() { os.Remove(path) }, nil
}
