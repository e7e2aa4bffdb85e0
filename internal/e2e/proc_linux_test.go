//go:build e2e && linux

package e2e

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the node process if the test binary
// dies (a -timeout panic, say), so no node outlives the test.
func dieWithParent(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
