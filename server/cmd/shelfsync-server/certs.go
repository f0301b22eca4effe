package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/shelfsync/shelfsync/server/internal/auth"
	"github.com/shelfsync/shelfsync/server/internal/broker"
	"github.com/shelfsync/shelfsync/server/internal/certs"
)

const certsUsage = `Usage:
  shelfsync-server certs init  --dir D [--broker-host NAME ...] [--ca-days 3650] [--days 365]
        new CA (ca.crt, ca.key — refuses to replace an existing ca.key), the
        server's client certificate (server.crt/.key, CN "server") and, with
        --broker-host, the broker certificate (broker.crt/.key, SAN = each NAME/IP)
  shelfsync-server certs issue --dir D --warehouse WH --gateway GW [--days 365] [--force]
        a gateway certificate, CN "WH/GW": D/gateways/WH/GW/{gateway.crt,gateway.key,ca.crt}
        (--force replaces an existing one: rotation, see deploy/README.md)
  shelfsync-server certs issue-server --dir D [--days 365] [--force]
        a new server.crt/server.key (CN "server")
  shelfsync-server certs issue-broker --dir D --broker-host NAME ... [--days 365] [--force]
        a new broker.crt/broker.key

Keys are ECDSA P-256, written with mode 0600. Keep ca.key on the admin host.
`

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func runCerts(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, certsUsage)
		return 2
	}
	fs := flag.NewFlagSet("shelfsync-server certs "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, certsUsage) }
	dir := fs.String("dir", "", "PKI directory (required)")
	days := fs.Int("days", certs.DefaultLeafDays, "validity of the issued certificate in days")
	caDays := fs.Int("ca-days", certs.DefaultCADays, "validity of the CA in days (init)")
	force := fs.Bool("force", false, "replace an existing certificate and key (never the CA)")
	wh := fs.String("warehouse", "", "warehouse ID (issue)")
	gw := fs.String("gateway", "", "gateway ID (issue)")
	var hosts multiFlag
	fs.Var(&hosts, "broker-host", "DNS name or IP address gateways dial (repeatable)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "error: --dir is required")
		return 2
	}
	o := certs.Options{Days: *days, Force: *force}
	var err error
	switch args[0] {
	case "init":
		if err = certs.Init(*dir, hosts, *caDays, o); err == nil {
			fmt.Fprintf(stdout, "CA, server certificate (CN %q)%s written to %s\n", certs.ServerCN, map[bool]string{true: " and broker certificate", false: ""}[len(hosts) > 0], *dir)
			fmt.Fprintf(stdout, "keep %s on this host; never copy it to a broker, gateway or cluster\n", filepath.Join(*dir, certs.CAKey))
		}
	case "issue":
		var out string
		if out, err = certs.IssueGateway(*dir, *wh, *gw, o); err == nil {
			fmt.Fprintf(stdout, "gateway certificate CN %q (valid %d days) in %s\n", certs.GatewayCN(*wh, *gw), *days, out)
			fmt.Fprintf(stdout, "copy ca.crt, gateway.crt, gateway.key to the gateway's /etc/shelfsync/pki/ and set warehouse=%q gateway=%q\n", *wh, *gw)
		}
	case "issue-server":
		if err = certs.IssueServer(*dir, o); err == nil {
			fmt.Fprintf(stdout, "server certificate (CN %q) written to %s\n", certs.ServerCN, *dir)
		}
	case "issue-broker":
		if err = certs.IssueBroker(*dir, hosts, o); err == nil {
			fmt.Fprintf(stdout, "broker certificate for %s written to %s\n", strings.Join(hosts, ", "), *dir)
		}
	default:
		fmt.Fprintf(stderr, "unknown certs command %q\n\n%s", args[0], certsUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

const tokensUsage = `Usage:
  shelfsync-server tokens add --file F --name NAME --role viewer|operator|admin [--owner ID]
        make an API bearer token; its SHA-256 is appended to F (the file of
        --api-tokens, created 0600) and the token is printed once — store it now.
        --owner binds the token to one owner (a 3PL's client): it is refused
        (403) on every route that shows or changes other owners' data.
        Revoke: delete the token's line from F (re-read within a second).

Roles: viewer reads (GET); operator also changes (POST/PUT/PATCH/DELETE);
admin also uses the routes under /api/v1/admin/.
`

func runTokens(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprint(stderr, tokensUsage)
		return 2
	}
	fs := flag.NewFlagSet("shelfsync-server tokens add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, tokensUsage) }
	file := fs.String("file", "", "token file (required)")
	name := fs.String("name", "", "who or what uses the token, e.g. dashboard (required)")
	roleS := fs.String("role", "", "viewer, operator or admin (required)")
	owner := fs.String("owner", "", "bind the token to this owner (a 3PL's client; 1-64 characters of [A-Za-z0-9._-], as in master data): it is refused (403) on every route that shows or changes other owners' data")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	role, err := auth.ParseRole(*roleS)
	if err != nil || *file == "" || *name == "" {
		fmt.Fprint(stderr, "error: --file, --name and --role are required\n\n"+tokensUsage)
		return 2
	}
	tok, err := auth.AddOwnerToken(*file, *name, role, *owner)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	bound := ""
	if *owner != "" {
		bound = ", bound to owner " + *owner
	}
	fmt.Fprintf(stderr, "token %q (%s%s) added to %s; it is shown only this once\n", *name, role, bound, *file)
	return 0
}

const passwdUsage = `Usage:
  shelfsync-server passwd --file F --user WH/GW [--password-stdin]
        set a gateway's MQTT password in F (the file of --mqtt-passwords, Mosquitto
        format: the same file works with Mosquitto's password_file). Without
        --password-stdin a random password is made and printed once.
`

func runPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shelfsync-server passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, passwdUsage) }
	file := fs.String("file", "", "password file (required)")
	user := fs.String("user", "", "username: the gateway identity WH/GW, or \"server\" (required)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" || *user == "" {
		fmt.Fprint(stderr, "error: --file and --user are required\n\n"+passwdUsage)
		return 2
	}
	if *user != broker.ServerIdentity {
		if _, _, err := certs.SplitGatewayCN(*user); err != nil || strings.HasPrefix(*user, "gw:") {
			fmt.Fprintf(stderr, "error: --user must be \"server\" or a gateway identity WH/GW: %v\n", err)
			return 2
		}
	}
	var pw string
	if *fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			fmt.Fprintln(stderr, "error: no password on standard input")
			return 2
		}
		pw = strings.TrimRight(line, "\r\n")
	} else {
		tok, err := auth.NewToken()
		if err != nil {
			fmt.Fprintln(stderr, "error:", err)
			return 1
		}
		pw = strings.TrimPrefix(tok, auth.TokenPrefix)
	}
	if len(pw) < 12 {
		fmt.Fprintln(stderr, "error: the password must have at least 12 characters")
		return 2
	}
	if err := broker.SetPassword(*file, *user, pw); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	if !*fromStdin {
		fmt.Fprintln(stdout, pw)
	}
	fmt.Fprintf(stderr, "password of %q set in %s (stored as a PBKDF2-SHA512 hash)\n", *user, *file)
	return 0
}
