package broker

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/shelfsync/shelfsync/server/internal/secretsfile"
)

// Password files use Mosquitto's format, so one file (made with
// mosquitto_passwd or `shelfsync-server passwd`) serves both brokers:
//
//	# comment
//	WH9/legacy-01:$7$10000$<base64 salt>$<base64 PBKDF2-HMAC-SHA512, 64 bytes>
//	WH9/legacy-02:$6$<base64 salt>$<base64 SHA-512(password || salt)>
//
// Only hashes are stored. A username is the gateway identity "{wh}/{gw}"
// (or "server"); ':' cannot appear in it.

// DefaultPasswordIterations is the PBKDF2 iteration count of new entries.
const DefaultPasswordIterations = 10000

// maxPasswordFile bounds what ParsePasswords reads (outside bytes).
const maxPasswordFile = 4 << 20

// ErrBadPasswordFile is returned (wrapped) for a malformed password file.
var ErrBadPasswordFile = errors.New("bad password file")

type pwEntry struct {
	sha6 bool // $6$: salted SHA-512
	iter int
	salt []byte
	hash []byte
}

// PasswordTable maps usernames to password hashes.
type PasswordTable map[string]pwEntry

// ParsePasswords parses a password file. Every error names its line.
func ParsePasswords(b []byte) (PasswordTable, error) {
	t := PasswordTable{}
	err := secretsfile.Lines(b, maxPasswordFile, ErrBadPasswordFile, func(_ int, line string) error {
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return errors.New("want USER:HASH")
		}
		e, err := parseHash(hash)
		if err != nil {
			return fmt.Errorf("user %q: %v", user, err)
		}
		if _, dup := t[user]; dup {
			return fmt.Errorf("user %q appears twice", user)
		}
		t[user] = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

func parseHash(s string) (pwEntry, error) {
	parts := strings.Split(s, "$")
	b64 := base64.StdEncoding
	switch {
	case len(parts) == 5 && parts[0] == "" && parts[1] == "7":
		iter, err := strconv.Atoi(parts[2])
		if err != nil || iter < 1 || iter > 10_000_000 {
			return pwEntry{}, fmt.Errorf("iterations %q must be 1..10000000", parts[2])
		}
		salt, err1 := b64.DecodeString(parts[3])
		hash, err2 := b64.DecodeString(parts[4])
		if err1 != nil || err2 != nil || len(salt) == 0 || len(hash) != sha512.Size {
			return pwEntry{}, errors.New("$7$ hash needs a base64 salt and a 64-byte base64 hash")
		}
		return pwEntry{iter: iter, salt: salt, hash: hash}, nil
	case len(parts) == 4 && parts[0] == "" && parts[1] == "6":
		salt, err1 := b64.DecodeString(parts[2])
		hash, err2 := b64.DecodeString(parts[3])
		if err1 != nil || err2 != nil || len(salt) == 0 || len(hash) != sha512.Size {
			return pwEntry{}, errors.New("$6$ hash needs a base64 salt and a 64-byte base64 hash")
		}
		return pwEntry{sha6: true, salt: salt, hash: hash}, nil
	}
	return pwEntry{}, errors.New("unknown hash format (want $7$ITER$SALT$HASH or $6$SALT$HASH; plain-text passwords are not accepted)")
}

// Check reports whether password is user's.
func (t PasswordTable) Check(user, password string) bool {
	e, ok := t[user]
	if !ok {
		return false
	}
	var got []byte
	if e.sha6 {
		h := sha512.New()
		h.Write([]byte(password))
		h.Write(e.salt)
		got = h.Sum(nil)
	} else {
		var err error
		got, err = pbkdf2.Key(sha512.New, password, e.salt, e.iter, sha512.Size)
		if err != nil {
			return false
		}
	}
	return subtle.ConstantTimeCompare(got, e.hash) == 1
}

// HashPassword returns the $7$ (PBKDF2-HMAC-SHA512) form of password.
func HashPassword(password string, iterations int) (string, error) {
	if iterations <= 0 {
		iterations = DefaultPasswordIterations
	}
	salt := make([]byte, 12)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	h, err := pbkdf2.Key(sha512.New, password, salt, iterations, sha512.Size)
	if err != nil {
		return "", err
	}
	b64 := base64.StdEncoding
	return fmt.Sprintf("$7$%d$%s$%s", iterations, b64.EncodeToString(salt), b64.EncodeToString(h)), nil
}

// SetPassword adds or replaces user in the password file at path (created
// with mode 0640 when missing), keeping the other lines.
func SetPassword(path, user, password string) error {
	if user == "" || strings.ContainsAny(user, ":\n\r") || strings.ContainsAny(user, "+#") {
		return fmt.Errorf("username %q: must be non-empty without ':', '+', '#' or newlines", user)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if _, err := ParsePasswords(old); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	hash, err := HashPassword(password, 0)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	replaced := false
	for _, line := range strings.Split(strings.TrimRight(string(old), "\n"), "\n") {
		if u, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && u == user && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			fmt.Fprintf(&out, "%s:%s\n", user, hash)
			replaced = true
			continue
		}
		if line != "" {
			out.WriteString(line + "\n")
		}
	}
	if !replaced {
		fmt.Fprintf(&out, "%s:%s\n", user, hash)
	}
	mode := os.FileMode(0o640)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Passwords is a password file that reloads itself when it changes
// (secretsfile), so gateways can be added without a restart: Get().Check
// re-reads the file first when it changed, and a file that became unreadable
// or malformed keeps the last good table (LastError says why).
type Passwords = secretsfile.File[PasswordTable]

// LoadPasswords reads the password file at path.
func LoadPasswords(path string) (*Passwords, error) {
	return secretsfile.Load(path, "password file", ParsePasswords)
}
