// Package advertise decides the address memberlist advertises for a node
// whose gossip runs over the kernel's port (package mltransport's
// Transport.FinalAdvertiseAddr). It is a leaf of the standard library
// alone, so its fuzz target links little and runs fast.
package advertise

import (
	"errors"
	"fmt"
	"net"
)

// ErrUnspecified is Addr's error when no address is configured and the
// kernel listens on an unspecified address (0.0.0.0, ::), which peers
// cannot dial.
var ErrUnspecified = errors.New("kernel listens on an unspecified address; set memberlist's AdvertiseAddr")

// ErrNotIP is Addr's error for a configured address that is not an IP
// literal.
var ErrNotIP = errors.New("advertise address is not an IP")

// Addr returns the IP and port to advertise. A non-empty configured
// address (memberlist's Config.AdvertiseAddr) must be an IP literal and is
// used, in canonical form; otherwise own, the IP the kernel listens on
// (nil when that is unspecified), is. The port is always port, the
// kernel's: the transport listens nowhere else.
func Addr(configured string, own net.IP, port int) (net.IP, int, error) {
	if configured != "" {
		a := net.ParseIP(configured)
		if a == nil {
			return nil, 0, fmt.Errorf("%w: %q", ErrNotIP, configured)
		}
		return Canonical(a), port, nil
	}
	if own == nil {
		return nil, 0, ErrUnspecified
	}
	return own, port, nil
}

// Canonical returns ip in its 4-byte form when it is IPv4, as memberlist
// expects of advertised addresses.
func Canonical(ip net.IP) net.IP {
	if ip4 := ip.To4(); ip4 != nil {
		return ip4
	}
	return ip
}
