//go:build !linux

package kernel

import (
	"net"
	"time"
)

// setUserTimeout has no portable equivalent outside Linux; the keepalive
// still bounds how long an idle connection to a dead peer lives.
func setUserTimeout(*net.TCPConn, time.Duration) {}
