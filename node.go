package notp

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ErrInvalidNode is wrapped by every error [Node.Validate] and [ParseNode]
// return, so callers can branch with errors.Is.
var ErrInvalidNode = errors.New("notp: invalid node")

// MaxPort is the largest TCP/UDP port number a [Node] may carry.
const MaxPort = 65535

// Node identifies one member of a cluster: a unique ID and the address its
// kernel listens on.
//
// Two Nodes are equal (==) when all three fields are equal. Ring membership
// is keyed by ID alone, so a node that moves to another host or port keeps
// its place in a ring. Host is used literally: "localhost" and "127.0.0.1"
// are different hosts.
//
// The msgpack and JSON forms are both {"id", "host", "port"}.
type Node struct {
	ID   string `msgpack:"id" json:"id"`
	Host string `msgpack:"host" json:"host"`
	Port int    `msgpack:"port" json:"port"`
}

// Addr returns the node's address as "host:port" (IPv6 hosts in brackets),
// ready for net.Dial.
func (n Node) Addr() string {
	return net.JoinHostPort(n.Host, strconv.Itoa(n.Port))
}

// String returns "id@host:port", the form [ParseNode] reads.
func (n Node) String() string {
	return n.ID + "@" + n.Addr()
}

// IsZero reports whether n is the zero Node.
func (n Node) IsZero() bool {
	return n == Node{}
}

// Validate reports whether n can take part in a cluster: a non-empty ID
// without whitespace or '@', a non-empty host and a port in 1..65535.
// The returned error wraps [ErrInvalidNode] and says which field is wrong.
func (n Node) Validate() error {
	switch {
	case n.ID == "":
		return fmt.Errorf("%w: empty id", ErrInvalidNode)
	case strings.ContainsAny(n.ID, "@ \t\r\n"):
		return fmt.Errorf("%w: id %q contains '@' or whitespace", ErrInvalidNode, n.ID)
	case n.Host == "":
		return fmt.Errorf("%w: node %q has an empty host", ErrInvalidNode, n.ID)
	case n.Port < 1 || n.Port > MaxPort:
		return fmt.Errorf("%w: node %q has port %d, want 1..%d", ErrInvalidNode, n.ID, n.Port, MaxPort)
	}
	return nil
}

// ParseNode parses the "id@host:port" form that [Node.String] writes and
// validates the result.
func ParseNode(s string) (Node, error) {
	id, addr, ok := strings.Cut(s, "@")
	if !ok {
		return Node{}, fmt.Errorf("%w: %q is not of the form id@host:port", ErrInvalidNode, s)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Node{}, fmt.Errorf("%w: %q: %w", ErrInvalidNode, s, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return Node{}, fmt.Errorf("%w: %q: port %q is not a number", ErrInvalidNode, s, port)
	}
	n := Node{ID: id, Host: host, Port: p}
	if err := n.Validate(); err != nil {
		return Node{}, err
	}
	return n, nil
}
