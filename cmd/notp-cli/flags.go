package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/notp-go/notp/cmd/notp-cli/internal/cmdline"
)

// flagHelp documents the flags in the order usage shows them.
var flagHelp = [][2]string{
	{"-I, --instance <id>", "Unique instance identifier of the node being connected to. (default: $NOTP_INSTANCE, else this host's name)"},
	{"-H, --hostname <host>", "Server hostname of the node being connected to. (default: $NOTP_HOST, else this host's name)"},
	{"-p, --port <port>", fmt.Sprintf("Server port of the node being connected to, 1-65535. (default: $NOTP_PORT, else %d)", cmdline.DefaultPort)},
	{"-a, --key <cookie>", "Distributed cookie to use for signing requests against the connecting node. Empty means no cookie, for nodes that run without one. It shows in process lists: prefer --key-file or $NOTP_COOKIE. (default: --key-file, else $NOTP_COOKIE, else \"\")"},
	{"    --key-file <file>", "Read the cookie from a file (at most 4 KiB; one trailing newline is dropped). Used when -a/--key is not given."},
	{"    --format text|json", "How replies are printed: json (the default of one-shot mode; the shell draws ownership as a chart) or text (readable tables). Every command also takes --format after its name."},
	{"    --timeout <duration>", fmt.Sprintf("Bound of each request, connecting included, e.g. 500ms or 10s. (default %v)", cmdline.DefaultTimeout)},
	{"    --tls", "Connect over TLS (for nodes started with a TLS config), verifying the node's certificate against the system's roots. Any other --tls-* flag implies it."},
	{"    --tls-ca <file>", "PEM file of the CA certificates to verify the node's certificate with, instead of the system's roots."},
	{"    --tls-cert <file>", "PEM certificate to present to the node (for nodes that require client certificates); needs --tls-key."},
	{"    --tls-key <file>", "PEM private key of --tls-cert."},
	{"    --tls-server-name <name>", "Name to verify the node's certificate against. (default: the -H host)"},
	{"    --tls-insecure-skip-verify", "Do not verify the node's certificate (testing only: an impostor on the path would go unnoticed, though it still cannot forge the cookie's proofs)."},
	{"-h, --help", "Show this help."},
}

// writeUsage prints the full usage text.
func writeUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: notp-cli [flags] [command [args...]]

notp-cli sends operator commands to the command server of a notp node. With a
command it prints the reply (as JSON unless --format text) and exits; without
one it starts an interactive shell.

Flags:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range flagHelp {
		fmt.Fprintf(tw, "  %s\t%s\n", f[0], f[1])
	}
	tw.Flush()
	fmt.Fprint(w, "\nCommands:\n")
	writeCommandList(w, false)
	fmt.Fprint(w, `
Options of the commands that take them (anywhere after the command):
  -f, --force       Execute this command before any existing message streams on
                    this node's gossip processor. Defaults to false.
  -w, --weight <n>  Number of virtual nodes to assign to the nodes being
                    inserted. Defaults to the `+"`rfactor`"+` of the session node.
                    update takes the weight as its fourth argument instead.
  --format text|json
                    How to print this command's reply (every command).
  --status <health>, --id <regexp>
                    nodes (members): keep the nodes of one health, or whose id
                    matches the regular expression.
  --group <name>    raft: the conflux group, when the node runs several.

"notp-cli help <command>" shows the usage of one command.

Exit status: 0 when the reply is {"ok": true, ...}; 1 when it is
{"ok": false, ...}, the node is unreachable or the request timed out (an
ok:false JSON says why); 2 on a usage error (nothing is sent).
`)
}

// writeCommandList prints one line per command: synopsis and summary.
// The shell adds its own commands.
func writeCommandList(w io.Writer, shell bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i := range cmdline.Specs {
		fmt.Fprintf(tw, "  %s\t%s\n", cmdline.Specs[i].Brief(), cmdline.Specs[i].Summary())
	}
	fmt.Fprintf(tw, "  %s\t%s\n", "monitor [--level <l>]", monitorHelp)
	fmt.Fprintf(tw, "  %s\t%s\n", keygenSynopsis, keygenSummary)
	if shell {
		fmt.Fprintf(tw, "  %s\t%s\n", "help [command]", "Shows the commands, or the usage of one command.")
		fmt.Fprintf(tw, "  %s\t%s\n", "exit", "Exits the shell (as does Ctrl-D).")
	}
	tw.Flush()
}

// writeCommandHelp prints the usage and full description of one command.
func writeCommandHelp(w io.Writer, s *cmdline.Spec) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", s.Synopsis(), s.Desc)
	if s.Opts == 0 && s.WeightHelp == "" {
		return
	}
	fmt.Fprint(w, "\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if s.Opts&cmdline.OptForce != 0 {
		fmt.Fprintf(tw, "  %s\t%s\n", "-f, --force", cmdline.ForceHelp)
	}
	if s.Opts&cmdline.OptGroup != 0 {
		fmt.Fprintf(tw, "  %s\t%s\n", "--group <name>", cmdline.GroupHelp)
	}
	switch {
	case s.Opts&cmdline.OptWeight != 0:
		fmt.Fprintf(tw, "  %s\t%s\n", "-w, --weight <n>", s.WeightHelp)
	case s.WeightHelp != "":
		fmt.Fprintf(tw, "  %s\t%s\n", "weight", s.WeightHelp)
	}
	tw.Flush()
}
