package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/command"
)

// forceHelp is notp's description of --force, kept word for word.
const forceHelp = "Execute this command before any existing message streams on this " +
	"node's gossip processor. Defaults to false."

// forceNote ends the description of every command that takes --force
// (notp's wording).
const forceNote = " If force is passed, the gossip processor on this node won't wait for " +
	"current message streams to be processed before executing this command."

// options a command accepts besides its positional arguments.
// --format is accepted by every command.
const (
	optForce  = 1 << iota // -f, --force
	optWeight             // -w, --weight <n>
	optFilter             // --status <health>, --id <regexp>
	optGroup              // --group <name>
)

// Bounds of the command-line arguments of the read-only commands.
const (
	// maxIDPattern is the longest --id regular expression, in bytes.
	maxIDPattern = 256
)

// healths are the values of --status: the failure detector's views.
var healths = []string{"alive", "suspect", "dead", "left", "unknown"}

// formats are the values of --format.
var formats = []string{"text", "json"}

// cmdOptions are the options of one command line besides its positional
// arguments.
type cmdOptions struct {
	force  bool
	weight int
	format string         // "", "text" or "json"; "" = the mode's default
	status string         // --status: keep nodes of this health ("" = all)
	idRe   *regexp.Regexp // --id: keep nodes whose id matches (nil = all)
	group  string         // --group: the conflux group of raft ("" = the node's only one)
}

// request is a parsed command line: what to send and how to show the reply.
type request struct {
	name string // the command (event) sent
	args command.Args
	// payload, when set, is sent instead of args: the encoded payload of
	// a command whose payload is not an Args (raft).
	payload []byte
	opts    cmdOptions
}

// spec describes one command: how help shows it and how its arguments
// become a command.Args.
type spec struct {
	name  string
	usage string // synopsis after the name
	desc  string // first sentence is the one-line summary
	opts  int    // optForce | optWeight
	// weightHelp describes the weight (option or positional), if any.
	weightHelp string
	// parse turns the positional arguments into Args; force and weight
	// are filled in by parseCommand.
	parse func(pos []string) (command.Args, error)
	// raw, when set, replaces parse for a command whose payload is not
	// an Args: it builds the encoded payload.
	raw func(pos []string, o cmdOptions) ([]byte, error)
}

const (
	weightOne  = "Number of virtual nodes to assign to the node being inserted. Defaults to the `rfactor` of the session node."
	weightMany = "Number of virtual nodes to assign to the nodes being inserted. Defaults to the `rfactor` of the session node."
	weightUpd  = "New number of virtual nodes of the node. Defaults to the `rfactor` of the session node."
	tripleSyn  = "<id> <host> <port> [<id> <host> <port>...]"
)

// specs lists the commands in the order of command.Names, then raft (a
// command package conflux contributes on nodes that run a group).
var specs = []spec{
	{name: command.Inspect, desc: "Prints the ring of this node to the console.", parse: noArgs},
	{name: command.Nodes, usage: "[--status alive|suspect|dead|left|unknown] [--id <regexp>]",
		desc: "Prints the nodes of the ring of this node to the console, with each node's health. " +
			"Also available as members. --status keeps the nodes of one health, --id those whose id matches " +
			"the regular expression (RE2 syntax, at most 256 bytes, unanchored: use ^ and $ to match whole ids).",
		opts: optFilter, parse: noArgs},
	{name: command.Ownership, desc: "Prints each node's share of the key space of this node's ring. The shell and --format text draw it as a bar chart.", parse: noArgs},
	{name: command.Lookup, usage: "<key> [n]",
		desc: "Prints a key's owner and preference list on this node's ring. " +
			"The preference list is the owner and its successors, n nodes (1-64; default the ring's pfactor+1). " +
			"The key is at most 1024 bytes; a key that starts with '-' follows '--'.",
		parse: lookupArgs},
	{name: command.Info, desc: "Prints the node's version, uptime, ring id and size, health counts and kernel and gossip counters.", parse: noArgs},
	{name: command.Events, usage: "<since>",
		desc:  "Prints the ring and health events the node logged from sequence number <since> on (at most 256; 0 returns none and the next cursor). monitor streams them.",
		parse: sinceArg},
	{name: command.Ping, desc: "Ping a node in the cluster (the node notp-cli talks to).", parse: noArgs},
	{name: command.Get, usage: "<id>", desc: "Returns information about a node's hostname and port in this node's cluster.", parse: oneID},
	{name: command.Has, usage: "<id>", desc: "Returns whether the targeted node exists in this node's cluster.", parse: oneID},
	{name: command.Weight, usage: "<id>", desc: "Returns the weight (number of virtual nodes) of a node in this node's cluster.", parse: oneID},
	{name: command.Weights, desc: "Returns the weight of every node in this node's cluster.", parse: noArgs},
	{name: command.Join, usage: "<id>", desc: "Joins a new cluster if not already present or not a member of any cluster.", parse: oneID},
	{name: command.Meet, usage: "<id> <host> <port>", desc: "Meets a node in this node's cluster. This is the only way to do transitive additions to the cluster.", parse: oneNode},
	{name: command.Leave, usage: "[-f|--force]", desc: "Leaves the cluster this node is a part of." + forceNote, opts: optForce, parse: noArgs},
	{name: command.Insert, usage: "<id> <host> <port> [-f|--force] [-w|--weight <n>]", desc: "Inserts a node into this node's cluster." + forceNote,
		opts: optForce | optWeight, weightHelp: weightOne, parse: oneNode},
	{name: command.MInsert, usage: tripleSyn + " [-f|--force] [-w|--weight <n>]", desc: "Inserts multiple nodes into this node's cluster." + forceNote,
		opts: optForce | optWeight, weightHelp: weightMany, parse: nodeList},
	{name: command.Update, usage: "<id> <host> <port> [weight] [-f|--force]", desc: "Updates the address and weight of a node in this node's cluster." + forceNote,
		opts: optForce, weightHelp: weightUpd, parse: updateArgs},
	{name: command.Remove, usage: "<id> <host> <port> [-f|--force]", desc: "Removes a node from this node's cluster." + forceNote, opts: optForce, parse: oneNode},
	{name: command.MRemove, usage: tripleSyn + " [-f|--force]", desc: "Removes multiple nodes from this node's cluster." + forceNote, opts: optForce, parse: nodeList},
	{name: command.Keys, usage: keysUsage, desc: keysDesc, parse: keysArgs},
	{name: command.Raft, usage: raftUsage, desc: raftDesc, opts: optGroup, raw: raftPayload},
}

// aliases are other names of commands.
var aliases = map[string]string{"members": command.Nodes}

// lookup returns the spec of the command name (or alias).
func lookup(name string) (*spec, bool) {
	if a, ok := aliases[name]; ok {
		name = a
	}
	for i := range specs {
		if specs[i].name == name {
			return &specs[i], true
		}
	}
	return nil, false
}

// summary is the first sentence of the description.
func (s *spec) summary() string {
	if i := strings.Index(s.desc, ". "); i >= 0 {
		return s.desc[:i+1]
	}
	return s.desc
}

// brief is the synopsis shortened for the list of commands.
func (s *spec) brief() string {
	return strings.NewReplacer("[-f|--force]", "[-f]", "[-w|--weight <n>]", "[-w <n>]",
		"[--status alive|suspect|dead|left|unknown] [--id <regexp>]", "[--status <health>] [--id <re>]",
		tripleSyn, "<id> <host> <port>...", keysUsage, "<op> [<key>]", raftUsage, raftBrief).Replace(s.synopsis())
}

// synopsis is "name usage".
func (s *spec) synopsis() string {
	if s.usage == "" {
		return s.name
	}
	return s.name + " " + s.usage
}

// errUnknownCommand is returned by parseCommand for a name that is not a
// command.
var errUnknownCommand = errors.New("unknown command")

// usageError is a bad argument list for a known command.
type usageError struct {
	spec *spec
	msg  string
}

func (e *usageError) Error() string { return e.spec.name + ": " + e.msg }

// parseCommand validates a command line (the command's name and its
// arguments) and builds the request payload. Nothing is sent: every error
// is a usage error.
func parseCommand(name string, args []string) (command.Args, error) {
	r, err := parseRequest(name, args)
	return r.args, err
}

// parseRequest is parseCommand that also returns the command to send (an
// alias resolved) and the options that shape the output.
func parseRequest(name string, args []string) (request, error) {
	s, ok := lookup(name)
	if !ok {
		return request{}, fmt.Errorf("%w %q", errUnknownCommand, name)
	}
	pos, o, err := splitOptions(s.opts, args)
	if err != nil {
		return request{}, &usageError{s, err.Error()}
	}
	if s.raw != nil {
		b, err := s.raw(pos, o)
		if err != nil {
			return request{}, &usageError{s, err.Error()}
		}
		return request{name: s.name, payload: b, opts: o}, nil
	}
	a, err := s.parse(pos)
	if err != nil {
		return request{}, &usageError{s, err.Error()}
	}
	a.Force = o.force
	if o.weight > 0 {
		a.Weight = o.weight
	}
	return request{name: s.name, args: a, opts: o}, nil
}

// splitOptions separates the options a command allows (opts; --format is
// always allowed) from its positional arguments. Options may appear
// anywhere; "--" ends them. A token that looks like a negative number is
// positional, so that "-3" is rejected as a weight or port rather than as
// an option.
func splitOptions(opts int, args []string) (pos []string, o cmdOptions, err error) {
	for i := 0; i < len(args); i++ {
		tok := args[i]
		if tok == "--" {
			return append(pos, args[i+1:]...), o, nil
		}
		if len(tok) < 2 || tok[0] != '-' || isNumber(tok) {
			pos = append(pos, tok)
			continue
		}
		name, val, hasVal := strings.Cut(tok, "=")
		value := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("option %s needs a value", name)
			}
			i++
			return args[i], nil
		}
		switch {
		case (name == "-f" || name == "--force") && opts&optForce != 0:
			if hasVal {
				return nil, cmdOptions{}, fmt.Errorf("option %s takes no value", name)
			}
			o.force = true
		case (name == "-w" || name == "--weight") && opts&optWeight != 0:
			if val, err = value(); err != nil {
				return nil, cmdOptions{}, err
			}
			if o.weight, err = parseWeight(val); err != nil {
				return nil, cmdOptions{}, err
			}
		case name == "--format":
			if val, err = value(); err != nil {
				return nil, cmdOptions{}, err
			}
			if o.format, err = parseFormat(val); err != nil {
				return nil, cmdOptions{}, err
			}
		case name == "--status" && opts&optFilter != 0:
			if val, err = value(); err != nil {
				return nil, cmdOptions{}, err
			}
			if !slices.Contains(healths, val) {
				return nil, cmdOptions{}, fmt.Errorf("--status %q: want one of %s", val, strings.Join(healths, ", "))
			}
			o.status = val
		case name == "--group" && opts&optGroup != 0:
			if val, err = value(); err != nil {
				return nil, cmdOptions{}, err
			}
			if val == "" {
				return nil, cmdOptions{}, errors.New("--group: empty group name")
			}
			o.group = val
		case name == "--id" && opts&optFilter != 0:
			if val, err = value(); err != nil {
				return nil, cmdOptions{}, err
			}
			if o.idRe, err = parseIDPattern(val); err != nil {
				return nil, cmdOptions{}, err
			}
		default:
			return nil, cmdOptions{}, fmt.Errorf("unknown option %q", tok)
		}
	}
	return pos, o, nil
}

// parseFormat accepts text or json.
func parseFormat(s string) (string, error) {
	if !slices.Contains(formats, s) {
		return "", fmt.Errorf("--format %q: want text or json", s)
	}
	return s, nil
}

// parseIDPattern compiles an --id regular expression of at most
// maxIDPattern bytes. Go's regexp (RE2) matches in time linear in the
// input, so no pattern can make matching slow.
func parseIDPattern(s string) (*regexp.Regexp, error) {
	if len(s) > maxIDPattern {
		return nil, fmt.Errorf("--id: pattern of %d bytes, at most %d", len(s), maxIDPattern)
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("--id: %w", err)
	}
	return re, nil
}

// sinceArg reads the cursor of events.
func sinceArg(pos []string) (command.Args, error) {
	if len(pos) != 1 {
		return command.Args{}, fmt.Errorf("takes <since>, got %d arguments", len(pos))
	}
	n, err := strconv.ParseUint(pos[0], 10, 64)
	if err != nil {
		return command.Args{}, fmt.Errorf("<since> %q is not a non-negative integer", pos[0])
	}
	return command.Args{Since: n}, nil
}

// lookupArgs reads <key> [n].
func lookupArgs(pos []string) (command.Args, error) {
	switch {
	case len(pos) == 0:
		return command.Args{}, errors.New("missing <key>")
	case len(pos) > 2:
		return command.Args{}, fmt.Errorf("takes <key> [n], got %d arguments", len(pos))
	case pos[0] == "":
		return command.Args{}, errors.New("empty <key>")
	case len(pos[0]) > command.MaxKeyLen:
		return command.Args{}, fmt.Errorf("key of %d bytes, at most %d", len(pos[0]), command.MaxKeyLen)
	}
	a := command.Args{Key: pos[0]}
	if len(pos) == 2 {
		n, err := strconv.Atoi(pos[1])
		if err != nil || n < 1 || n > command.MaxLookupN {
			return command.Args{}, fmt.Errorf("n %q is not a number in 1-%d", pos[1], command.MaxLookupN)
		}
		a.N = n
	}
	return a, nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

func noArgs(pos []string) (command.Args, error) {
	if len(pos) > 0 {
		return command.Args{}, fmt.Errorf("takes no arguments, got %q", strings.Join(pos, " "))
	}
	return command.Args{}, nil
}

func oneID(pos []string) (command.Args, error) {
	switch {
	case len(pos) == 0:
		return command.Args{}, errors.New("missing <id>")
	case len(pos) > 1:
		return command.Args{}, fmt.Errorf("takes one <id>, got %d arguments", len(pos))
	case strings.TrimSpace(pos[0]) == "":
		return command.Args{}, errors.New("empty <id>")
	}
	return command.Args{ID: pos[0]}, nil
}

func oneNode(pos []string) (command.Args, error) {
	if len(pos) != 3 {
		return command.Args{}, fmt.Errorf("takes <id> <host> <port>, got %d arguments", len(pos))
	}
	n, err := parseNode(pos)
	if err != nil {
		return command.Args{}, err
	}
	return command.Args{Node: &n}, nil
}

func updateArgs(pos []string) (command.Args, error) {
	if len(pos) != 3 && len(pos) != 4 {
		return command.Args{}, fmt.Errorf("takes <id> <host> <port> [weight], got %d arguments", len(pos))
	}
	a, err := oneNode(pos[:3])
	if err != nil {
		return command.Args{}, err
	}
	if len(pos) == 4 {
		if a.Weight, err = parseWeight(pos[3]); err != nil {
			return command.Args{}, err
		}
	}
	return a, nil
}

// nodeList reads flat id host port triples; unlike notp, an incomplete
// trailing triple is an error rather than silently dropped.
func nodeList(pos []string) (command.Args, error) {
	if len(pos) == 0 {
		return command.Args{}, errors.New("needs at least one <id> <host> <port> triple")
	}
	if len(pos)%3 != 0 {
		return command.Args{}, fmt.Errorf("incomplete node triple %q: nodes are given as <id> <host> <port>",
			strings.Join(pos[len(pos)-len(pos)%3:], " "))
	}
	nodes := make([]notp.Node, 0, len(pos)/3)
	for i := 0; i < len(pos); i += 3 {
		n, err := parseNode(pos[i : i+3])
		if err != nil {
			return command.Args{}, err
		}
		nodes = append(nodes, n)
	}
	return command.Args{Nodes: nodes}, nil
}

// parseNode reads one id host port triple.
func parseNode(t []string) (notp.Node, error) {
	p, err := parsePort(t[2])
	if err != nil {
		return notp.Node{}, fmt.Errorf("node %q: %w", t[0], err)
	}
	n := notp.Node{ID: t[0], Host: t[1], Port: p}
	if err := n.Validate(); err != nil {
		return notp.Node{}, err
	}
	return n, nil
}

// parsePort accepts a decimal port in 1..65535.
func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("port %q is not a number", s)
	}
	if p < 1 || p > notp.MaxPort {
		return 0, fmt.Errorf("port %d is out of range 1-%d", p, notp.MaxPort)
	}
	return p, nil
}

// parseWeight accepts a positive decimal integer.
func parseWeight(s string) (int, error) {
	w, err := strconv.Atoi(s)
	if err != nil || w < 1 {
		return 0, fmt.Errorf("weight %q is not a positive integer", s)
	}
	return w, nil
}
