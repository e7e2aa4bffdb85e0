//go:build !unix

package main

// fdLimit returns 0: the limit is unknown on this platform.
func fdLimit() uint64 { return 0 }

// openFDs returns -1: unknown on this platform.
func openFDs() int { return -1 }

// loadAvg returns "": unknown on this platform.
func loadAvg() string { return "" }
