//go:build unix

package main

import (
	"os"
	"syscall"
)

// lockLedger takes an exclusive flock on the file at path, creating it,
// and returns its release. The kernel releases the lock when the process
// dies, so a process killed while it holds it does not block the others.
func lockLedger(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}
