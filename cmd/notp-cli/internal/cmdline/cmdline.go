// Package cmdline parses notp-cli's command lines: the table of commands
// (name, synopsis, description, options and argument parser, which help
// shows) and the parsing of a command's options and positional arguments
// into the payload the node receives. It is apart from package main, whose
// test binary links whole cluster nodes (memberlist, Raft, Prometheus), so
// that its fuzz target does not pay on every execution for the coverage
// counters of all that code.
package cmdline

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/kernel"
)

// ForceHelp is notp's description of --force, kept word for word.
const ForceHelp = "Execute this command before any existing message streams on this " +
	"node's gossip processor. Defaults to false."

// forceNote ends the description of every command that takes --force
// (notp's wording).
const forceNote = " If force is passed, the gossip processor on this node won't wait for " +
	"current message streams to be processed before executing this command."

// OptForce, OptWeight, OptFilter and OptGroup are the options a command
// accepts besides its positional arguments ([Spec].Opts).
// --format is accepted by every command.
const (
	OptForce  = 1 << iota // -f, --force
	OptWeight             // -w, --weight <n>
	OptFilter             // --status <health>, --id <regexp>
	OptGroup              // --group <name>
)

// Bounds of the command-line arguments of the read-only commands.
const (
	// MaxIDPattern is the longest --id regular expression, in bytes.
	MaxIDPattern = 256
)

// healths are the values of --status: the failure detector's views.
var healths = []string{"alive", "suspect", "dead", "left", "unknown"}

// formats are the values of --format.
var formats = []string{"text", "json"}

// Options are the options of one command line besides its positional
// arguments.
type Options struct {
	Force  bool           // -f, --force
	Weight int            // -w, --weight; 0 = not given
	Format string         // "", "text" or "json"; "" = the mode's default
	Status string         // --status: keep nodes of this health ("" = all)
	IDRe   *regexp.Regexp // --id: keep nodes whose id matches (nil = all)
	Group  string         // --group: the conflux group of raft ("" = the node's only one)
}

// Request is a parsed command line: what to send and how to show the reply.
type Request struct {
	Name string // the command (event) sent
	Args command.Args
	// Payload, when set, is sent instead of Args: the encoded payload of
	// a command whose payload is not an Args (raft).
	Payload []byte
	Opts    Options
}

// Spec describes one command: how help shows it and how its arguments
// become a command.Args.
type Spec struct {
	Name  string
	Usage string // synopsis after the name
	Desc  string // first sentence is the one-line summary
	Opts  int    // OptForce | OptWeight | OptFilter | OptGroup
	// WeightHelp describes the weight (option or positional), if any.
	WeightHelp string
	// Parse turns the positional arguments into Args; Force and Weight
	// are filled in by ParseRequest.
	Parse func(pos []string) (command.Args, error)
	// Raw, when set, replaces Parse for a command whose payload is not
	// an Args: it builds the encoded payload.
	Raw func(pos []string, o Options) ([]byte, error)
}

const (
	weightOne  = "Number of virtual nodes to assign to the node being inserted. Defaults to the `rfactor` of the session node."
	weightMany = "Number of virtual nodes to assign to the nodes being inserted. Defaults to the `rfactor` of the session node."
	weightUpd  = "New number of virtual nodes of the node. Defaults to the `rfactor` of the session node."
	tripleSyn  = "<id> <host> <port> [<id> <host> <port>...]"
)

// Specs lists the commands in the order of command.Names, then raft (a
// command package conflux contributes on nodes that run a group).
var Specs = []Spec{
	{Name: command.Inspect, Desc: "Prints the ring of this node to the console.", Parse: noArgs},
	{Name: command.Nodes, Usage: "[--status alive|suspect|dead|left|unknown] [--id <regexp>]",
		Desc: "Prints the nodes of the ring of this node to the console, with each node's health. " +
			"Also available as members. --status keeps the nodes of one health, --id those whose id matches " +
			"the regular expression (RE2 syntax, at most 256 bytes, unanchored: use ^ and $ to match whole ids).",
		Opts: OptFilter, Parse: noArgs},
	{Name: command.Ownership, Desc: "Prints each node's share of the key space of this node's ring. The shell and --format text draw it as a bar chart.", Parse: noArgs},
	{Name: command.Lookup, Usage: "<key> [n]",
		Desc: "Prints a key's owner and preference list on this node's ring. " +
			"The preference list is the owner and its successors, n nodes (1-64; default the ring's pfactor+1). " +
			"The key is at most 1024 bytes; a key that starts with '-' follows '--'.",
		Parse: lookupArgs},
	{Name: command.Info, Desc: "Prints the node's version, uptime, ring id and size, health counts and kernel, gossip and memberlist transport counters. " +
		"The memberlist counters (packets, streams and their bytes, streams refused at their limits) are the node's own, summed over every time its ring was joined.", Parse: noArgs},
	{Name: command.Events, Usage: "<since>",
		Desc:  "Prints the ring and health events the node logged from sequence number <since> on (at most 256; 0 returns none and the next cursor). monitor streams them.",
		Parse: sinceArg},
	{Name: command.Ping, Desc: "Ping a node in the cluster (the node notp-cli talks to).", Parse: noArgs},
	{Name: command.Get, Usage: "<id>", Desc: "Returns information about a node's hostname and port in this node's cluster.", Parse: oneID},
	{Name: command.Has, Usage: "<id>", Desc: "Returns whether the targeted node exists in this node's cluster.", Parse: oneID},
	{Name: command.Weight, Usage: "<id>", Desc: "Returns the weight (number of virtual nodes) of a node in this node's cluster.", Parse: oneID},
	{Name: command.Weights, Desc: "Returns the weight of every node in this node's cluster.", Parse: noArgs},
	{Name: command.Join, Usage: "<id>", Desc: "Joins a new cluster if not already present or not a member of any cluster.", Parse: oneID},
	{Name: command.Meet, Usage: "<id> <host> <port>", Desc: "Meets a node in this node's cluster. This is the only way to do transitive additions to the cluster.", Parse: oneNode},
	{Name: command.Leave, Usage: "[-f|--force]", Desc: "Leaves the cluster this node is a part of." + forceNote, Opts: OptForce, Parse: noArgs},
	{Name: command.Insert, Usage: "<id> <host> <port> [-f|--force] [-w|--weight <n>]", Desc: "Inserts a node into this node's cluster." + forceNote,
		Opts: OptForce | OptWeight, WeightHelp: weightOne, Parse: oneNode},
	{Name: command.MInsert, Usage: tripleSyn + " [-f|--force] [-w|--weight <n>]", Desc: "Inserts multiple nodes into this node's cluster." + forceNote,
		Opts: OptForce | OptWeight, WeightHelp: weightMany, Parse: nodeList},
	{Name: command.Update, Usage: "<id> <host> <port> [weight] [-f|--force]", Desc: "Updates the address and weight of a node in this node's cluster." + forceNote,
		Opts: OptForce, WeightHelp: weightUpd, Parse: updateArgs},
	{Name: command.Remove, Usage: "<id> <host> <port> [-f|--force]", Desc: "Removes a node from this node's cluster." + forceNote, Opts: OptForce, Parse: oneNode},
	{Name: command.MRemove, Usage: tripleSyn + " [-f|--force]", Desc: "Removes multiple nodes from this node's cluster." + forceNote, Opts: OptForce, Parse: nodeList},
	{Name: command.Keys, Usage: KeysUsage, Desc: KeysDesc, Parse: keysArgs},
	{Name: command.Raft, Usage: RaftUsage, Desc: RaftDesc, Opts: OptGroup, Raw: raftPayload},
}

// aliases are other names of commands.
var aliases = map[string]string{"members": command.Nodes}

// Lookup returns the Spec of the command name (or alias).
func Lookup(name string) (*Spec, bool) {
	if a, ok := aliases[name]; ok {
		name = a
	}
	for i := range Specs {
		if Specs[i].Name == name {
			return &Specs[i], true
		}
	}
	return nil, false
}

// Summary is the first sentence of the description.
func (s *Spec) Summary() string {
	if i := strings.Index(s.Desc, ". "); i >= 0 {
		return s.Desc[:i+1]
	}
	return s.Desc
}

// Brief is the synopsis shortened for the list of commands.
func (s *Spec) Brief() string {
	return strings.NewReplacer("[-f|--force]", "[-f]", "[-w|--weight <n>]", "[-w <n>]",
		"[--status alive|suspect|dead|left|unknown] [--id <regexp>]", "[--status <health>] [--id <re>]",
		tripleSyn, "<id> <host> <port>...", KeysUsage, "<op> [<key>]", RaftUsage, RaftBrief).Replace(s.Synopsis())
}

// Synopsis is "name usage".
func (s *Spec) Synopsis() string {
	if s.Usage == "" {
		return s.Name
	}
	return s.Name + " " + s.Usage
}

// ErrUnknownCommand is returned by ParseCommand for a name that is not a
// command.
var ErrUnknownCommand = errors.New("unknown command")

// UsageError is a bad argument list for a known command.
type UsageError struct {
	Spec *Spec  // the command
	Msg  string // what is wrong with its arguments
}

// Error is "<command>: <what is wrong>".
func (e *UsageError) Error() string { return e.Spec.Name + ": " + e.Msg }

// ParseCommand validates a command line (the command's name and its
// arguments) and builds the request payload. Nothing is sent: every error
// is a usage error.
func ParseCommand(name string, args []string) (command.Args, error) {
	r, err := ParseRequest(name, args)
	return r.Args, err
}

// ParseRequest is ParseCommand that also returns the command to send (an
// alias resolved) and the options that shape the output.
func ParseRequest(name string, args []string) (Request, error) {
	s, ok := Lookup(name)
	if !ok {
		return Request{}, fmt.Errorf("%w %q", ErrUnknownCommand, name)
	}
	pos, o, err := splitOptions(s.Opts, args)
	if err != nil {
		return Request{}, &UsageError{s, err.Error()}
	}
	if s.Raw != nil {
		b, err := s.Raw(pos, o)
		if err != nil {
			return Request{}, &UsageError{s, err.Error()}
		}
		return Request{Name: s.Name, Payload: b, Opts: o}, nil
	}
	a, err := s.Parse(pos)
	if err != nil {
		return Request{}, &UsageError{s, err.Error()}
	}
	a.Force = o.Force
	if o.Weight > 0 {
		a.Weight = o.Weight
	}
	return Request{Name: s.Name, Args: a, Opts: o}, nil
}

// splitOptions separates the options a command allows (opts; --format is
// always allowed) from its positional arguments. Options may appear
// anywhere; "--" ends them. A token that looks like a negative number is
// positional, so that "-3" is rejected as a weight or port rather than as
// an option.
func splitOptions(opts int, args []string) (pos []string, o Options, err error) {
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
		case (name == "-f" || name == "--force") && opts&OptForce != 0:
			if hasVal {
				return nil, Options{}, fmt.Errorf("option %s takes no value", name)
			}
			o.Force = true
		case (name == "-w" || name == "--weight") && opts&OptWeight != 0:
			if val, err = value(); err != nil {
				return nil, Options{}, err
			}
			if o.Weight, err = parseWeight(val); err != nil {
				return nil, Options{}, err
			}
		case name == "--format":
			if val, err = value(); err != nil {
				return nil, Options{}, err
			}
			if o.Format, err = ParseFormat(val); err != nil {
				return nil, Options{}, err
			}
		case name == "--status" && opts&OptFilter != 0:
			if val, err = value(); err != nil {
				return nil, Options{}, err
			}
			if !slices.Contains(healths, val) {
				return nil, Options{}, fmt.Errorf("--status %q: want one of %s", val, strings.Join(healths, ", "))
			}
			o.Status = val
		case name == "--group" && opts&OptGroup != 0:
			if val, err = value(); err != nil {
				return nil, Options{}, err
			}
			if val == "" {
				return nil, Options{}, errors.New("--group: empty group name")
			}
			o.Group = val
		case name == "--id" && opts&OptFilter != 0:
			if val, err = value(); err != nil {
				return nil, Options{}, err
			}
			if o.IDRe, err = parseIDPattern(val); err != nil {
				return nil, Options{}, err
			}
		default:
			return nil, Options{}, fmt.Errorf("unknown option %q", tok)
		}
	}
	return pos, o, nil
}

// SplitFormat separates a command's --format option (as "--format json"
// or "--format=json", anywhere before "--") from its positional
// arguments, for the commands that take no other option (keys, keygen).
// format is "" when not given; any other option is an error.
func SplitFormat(args []string) (pos []string, format string, err error) {
	pos, o, err := splitOptions(0, args)
	return pos, o.Format, err
}

// ParseFormat accepts text or json.
func ParseFormat(s string) (string, error) {
	if !slices.Contains(formats, s) {
		return "", fmt.Errorf("--format %q: want text or json", s)
	}
	return s, nil
}

// parseIDPattern compiles an --id regular expression of at most
// MaxIDPattern bytes. Go's regexp (RE2) matches in time linear in the
// input, so no pattern can make matching slow.
func parseIDPattern(s string) (*regexp.Regexp, error) {
	if len(s) > MaxIDPattern {
		return nil, fmt.Errorf("--id: pattern of %d bytes, at most %d", len(s), MaxIDPattern)
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
	p, err := ParsePort(t[2])
	if err != nil {
		return notp.Node{}, fmt.Errorf("node %q: %w", t[0], err)
	}
	n := notp.Node{ID: t[0], Host: t[1], Port: p}
	if err := n.Validate(); err != nil {
		return notp.Node{}, err
	}
	return n, nil
}

// ParsePort accepts a decimal port in 1..65535.
func ParsePort(s string) (int, error) {
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

// RaftUsage and RaftBrief are the synopsis of raft, in help and in the
// list of commands.
const (
	RaftUsage = "peers|transfer [<id>]|remove-peer <id>|snapshot [--group <name>]"
	RaftBrief = "peers|transfer|remove-peer|snapshot"
)

const RaftDesc = "Shows or changes a conflux group (Raft) running on this node. " +
	"peers prints the group's servers (id, address, voter or nonvoter, leader, applied index) and this node's state, term, last log, commit and applied indices; " +
	"transfer hands leadership to <id> or to the most up-to-date voter; " +
	"remove-peer removes server <id> from the group (not the last voter); " +
	"snapshot takes a snapshot on this node now. " +
	"transfer and remove-peer must be sent to the group's leader (elsewhere they fail with NOT_LEADER, naming it). " +
	"--group names the group; it may be left out when the node runs only one."

// GroupHelp describes --group.
const GroupHelp = "The conflux group to act on. Defaults to the only group the node runs."

// raftPayload builds the raft command's payload from "<op> [<id>]" and
// --group, checked as the node will check it.
func raftPayload(pos []string, o Options) ([]byte, error) {
	if len(pos) == 0 {
		return nil, fmt.Errorf("missing operation: one of %s", strings.Join(command.RaftOps, ", "))
	}
	a := command.RaftArgs{Op: pos[0], Group: o.Group}
	switch a.Op {
	case command.RaftPeers, command.RaftSnapshot:
		if len(pos) > 1 {
			return nil, fmt.Errorf("%s takes no arguments, got %q", a.Op, strings.Join(pos[1:], " "))
		}
	case command.RaftTransfer:
		if len(pos) > 2 {
			return nil, fmt.Errorf("transfer takes at most one <id>, got %d arguments", len(pos)-1)
		}
	case command.RaftRemovePeer:
		if len(pos) != 2 {
			return nil, fmt.Errorf("remove-peer takes one <id>, got %d arguments", len(pos)-1)
		}
	default:
		return nil, fmt.Errorf("unknown operation %q: want one of %s", a.Op, strings.Join(command.RaftOps, ", "))
	}
	if len(pos) == 2 {
		a.ID = pos[1]
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return command.EncodeRaftArgs(a)
}

// KeysUsage is the keys command's synopsis after its name.
const KeysUsage = "list | install <cookie> | use <cookie|id> | remove <cookie|id>"

// KeysDesc describes the keys command.
const KeysDesc = "Lists or changes the cluster's cookies on every live node, like serf's keys: " +
	"install adds a cookie every node accepts, use makes it the one every node proves with, " +
	"remove retires one (never the one in use). " +
	"The command goes to each node the target lists as neither dead nor left (alive, suspect or unknown) and succeeds (exit 0) " +
	"only when every one of them acknowledged; otherwise it names each node it could not reach or that refused, with why, and exits 1. " +
	"Dead and left nodes are skipped and listed as such without failing the command; a node seen dead that was in fact still " +
	"running (cut off by a partition) keeps its old keys, so check it with keys list once it is back. " +
	"A cookie travels sealed under the key notp-cli connects with, and keys are shown and named by fingerprint (16 hex digits, " +
	"which use and remove also accept). Rotate with install, use and remove of the old one, each done before the next."

// ErrHandledApart is the keys command's parse result: keys fans out to
// every node neither dead nor left (notp-cli's runKeys), not through the one-request path.
var ErrHandledApart = fmt.Errorf("keys fans out to every node")

// KeysRequest is a parsed keys command.
type KeysRequest struct {
	Op     string // command.Key*
	Cookie string // install: the new cookie
	ID     string // use, remove: the key's fingerprint
	Format string
}

// ParseKeys validates a keys command line. A use or remove argument that
// is not a fingerprint is a cookie, whose fingerprint it computes.
func ParseKeys(args []string) (KeysRequest, error) {
	var kr KeysRequest
	pos, format, err := SplitFormat(args)
	if err != nil {
		return kr, fmt.Errorf("keys: %w", err)
	}
	kr.Format = format
	if len(pos) == 0 {
		return kr, fmt.Errorf("keys: want list, install, use or remove")
	}
	kr.Op = pos[0]
	want := 2
	if kr.Op == command.KeyList {
		want = 1
	}
	switch {
	case !slices.Contains([]string{command.KeyList, command.KeyInstall, command.KeyUse, command.KeyRemove}, kr.Op):
		return kr, fmt.Errorf("keys: unknown operation %q: want list, install, use or remove", kr.Op)
	case len(pos) != want:
		return kr, fmt.Errorf("keys %s: want %d argument(s), got %d", kr.Op, want-1, len(pos)-1)
	case kr.Op == command.KeyInstall:
		kr.Cookie = pos[1]
		if len(kr.Cookie) < kernel.MinCookieLen {
			return kr, fmt.Errorf("keys install: the cookie is %d bytes, want at least %d (see keygen)", len(kr.Cookie), kernel.MinCookieLen)
		}
	case want == 2:
		kr.ID = pos[1]
		if !IsKeyID(kr.ID) {
			kr.ID = kernel.KeyID(pos[1])
		}
	}
	return kr, nil
}

// IsKeyID reports whether s is a key fingerprint: 16 lowercase hex digits.
func IsKeyID(s string) bool {
	return len(s) == 16 && strings.Trim(s, "0123456789abcdef") == ""
}

// keysArgs is the spec's parser: it validates like ParseKeys for help and
// errors, but keys never goes through the single-request path.
func keysArgs(pos []string) (command.Args, error) {
	if _, err := ParseKeys(pos); err != nil {
		return command.Args{}, err
	}
	return command.Args{}, ErrHandledApart
}
