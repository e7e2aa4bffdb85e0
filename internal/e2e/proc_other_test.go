//go:build e2e && !linux

package e2e

import "os/exec"

// dieWithParent is a no-op where Pdeathsig does not exist; the test's
// cleanup still stops every node it started.
func dieWithParent(*exec.Cmd) {}
