//go:build !linux

package kernel

// osYield: yielding to other processes is Linux-only here; elsewhere a
// polling reader yields to this process's goroutines only.
func osYield() {}
