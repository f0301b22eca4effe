// Package auth guards the server's HTTP API with bearer tokens. Tokens are
// random secrets handed out once (`shelfsync-server tokens add`); the token
// file keeps only their SHA-256, a role and a name:
//
//	# name        role      sha256 of the token
//	dashboard     viewer    sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//	ops-laptop    operator  sha256:...
//	admin-anna    admin     sha256:...
//
// Roles are ordered: viewer < operator < admin. A request needs viewer for
// GET/HEAD, operator for POST/PUT/PATCH/DELETE, and admin for the routes
// under /api/v1/admin/ and those listed in Config.AdminRoutes. /healthz and
// /metrics are open or need viewer, per configuration.
//
// A token may be bound to an owner (a 3PL's client) with a fourth field
// "owner=ID": it is then served only on the routes Config.OwnerAllowed
// admits (routes that show or change nothing of another owner), and 403
// everywhere else — deny by default, so a new route is closed to owner
// tokens until it is scoped by owner.
package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/secretsfile"
)

// Role is what a token may do.
type Role int

// Roles, weakest first.
const (
	RoleNone Role = iota
	RoleViewer
	RoleOperator
	RoleAdmin
)

// String returns the role's name.
func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole parses viewer, operator or admin.
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return RoleViewer, nil
	case "operator":
		return RoleOperator, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("role %q: must be viewer, operator or admin", s)
}

// ErrBadTokenFile is returned (wrapped) for a malformed token file.
var ErrBadTokenFile = errors.New("bad token file")

// maxTokenFile bounds what ParseTokens reads.
const maxTokenFile = 4 << 20

// TokenPrefix starts every token, so a leaked one is easy to grep for.
const TokenPrefix = "ssk_"

// Entry is one token of a token file.
type Entry struct {
	Name string
	Role Role
	Hash [sha256.Size]byte
	// Owner binds the token to one owner (a 3PL's client); "" is a token
	// of the warehouse operator, which sees every owner.
	Owner string
}

// Table maps token hashes to entries.
type Table map[[sha256.Size]byte]Entry

// ParseTokens parses a token file: "NAME ROLE sha256:HEX [owner=ID]" per
// line, '#' comments. Every error names its line.
func ParseTokens(b []byte) (Table, error) {
	t := Table{}
	names := map[string]bool{}
	err := secretsfile.Lines(b, maxTokenFile, ErrBadTokenFile, func(_ int, line string) error {
		f := strings.Fields(line)
		if len(f) != 3 && len(f) != 4 {
			return errors.New("want NAME ROLE sha256:HEX [owner=ID]")
		}
		owner := ""
		if len(f) == 4 {
			var ok bool
			if owner, ok = strings.CutPrefix(f[3], "owner="); !ok || checkOwner(owner) != nil {
				return fmt.Errorf("fourth field %q: want owner=ID (an owner id of 1-64 characters of [A-Za-z0-9._-])", f[3])
			}
		}
		role, err := ParseRole(f[1])
		if err != nil {
			return err
		}
		hx, ok := strings.CutPrefix(f[2], "sha256:")
		raw, err := hex.DecodeString(hx)
		if !ok || err != nil || len(raw) != sha256.Size {
			return errors.New("hash must be sha256:<64 hex digits> (tokens themselves are never stored)")
		}
		if names[f[0]] {
			return fmt.Errorf("name %q appears twice", f[0])
		}
		names[f[0]] = true
		e := Entry{Name: f[0], Role: role, Owner: owner}
		copy(e.Hash[:], raw)
		if _, dup := t[e.Hash]; dup {
			return errors.New("the same token appears twice")
		}
		t[e.Hash] = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Lookup returns the entry of a presented token.
func (t Table) Lookup(token string) (Entry, bool) {
	e, ok := t[sha256.Sum256([]byte(token))]
	return e, ok
}

// NewToken returns a new random token (32 bytes of entropy).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// AddToken creates a token for name with role, appends its hash to the
// token file at path (created with mode 0600 when missing) and returns the
// token, which is shown only this once.
func AddToken(path, name string, role Role) (string, error) {
	return AddOwnerToken(path, name, role, "")
}

// checkOwner checks an owner id by the rule master data applies to an
// item's owner (protocol.ValidateID: 1-64 characters of [A-Za-z0-9._-],
// not only dots), so a token can be bound to every owner and to no id no
// item can have.
func checkOwner(owner string) error {
	if err := protocol.ValidateID(owner); err != nil {
		return fmt.Errorf("owner %q: want 1-64 characters of [A-Za-z0-9._-], not only dots: %w", owner, err)
	}
	return nil
}

// AddOwnerToken is AddToken for a token bound to owner ("" binds none).
func AddOwnerToken(path, name string, role Role, owner string) (string, error) {
	if name == "" || strings.ContainsAny(name, " \t\r\n#") {
		return "", fmt.Errorf("name %q: must be non-empty without spaces or '#'", name)
	}
	if owner != "" {
		if err := checkOwner(owner); err != nil {
			return "", err
		}
	}
	if role == RoleNone {
		return "", errors.New("a role is required: viewer, operator or admin")
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	t, err := ParseTokens(old)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	for _, e := range t {
		if e.Name == name {
			return "", fmt.Errorf("a token named %q exists already; remove its line from %s first to replace it", name, path)
		}
	}
	tok, err := NewToken()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(tok))
	var out bytes.Buffer
	out.Write(old)
	if len(old) == 0 {
		out.WriteString("# shelfsync API tokens: NAME ROLE sha256:HASH (made by `shelfsync-server tokens add`)\n")
	} else if old[len(old)-1] != '\n' {
		out.WriteByte('\n')
	}
	fmt.Fprintf(&out, "%s %s sha256:%s", name, role, hex.EncodeToString(sum[:]))
	if owner != "" {
		fmt.Fprintf(&out, " owner=%s", owner)
	}
	out.WriteByte('\n')
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), mode); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	return tok, nil
}

// TokenFile is a token file that reloads itself when it changes
// (secretsfile), so tokens can be added or revoked without a restart. A
// file that turns malformed keeps the last good table.
type TokenFile struct {
	f *secretsfile.File[Table]
}

// LoadTokenFile reads the token file at path.
func LoadTokenFile(path string) (*TokenFile, error) {
	f, err := secretsfile.Load(path, "token file", ParseTokens)
	if err != nil {
		return nil, err
	}
	return &TokenFile{f: f}, nil
}

// Lookup returns the entry of a presented token.
func (f *TokenFile) Lookup(token string) (Entry, bool) { return f.f.Get().Lookup(token) }

// Len returns the number of tokens.
func (f *TokenFile) Len() int { return len(f.f.Peek()) }
