package broker

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// aclCases are the ACL's allow/deny cases: identity, topic, write
// (publish) or read (subscribe), and the verdict.
var aclCases = []struct {
	role  Role
	id    string
	topic string
	write bool
	ok    bool
}{
	{RoleGateway, "WH1/gw-01", "shelfsync/v1/WH1/gw-01/up", true, true},
	{RoleGateway, "WH1/gw-01", "shelfsync/v1/WH1/gw-01/status", true, true},
	{RoleGateway, "gw:WH1/gw-01", "shelfsync/v1/WH1/gw-01/up", true, true},
	{RoleGateway, "WH1/gw-01", "shelfsync/v1/WH1/gw-01/down", true, false},
	{RoleGateway, "WH1/gw-01", "shelfsync/v1/WH1/gw-02/up", true, false},
	{RoleGateway, "WH1/gw-01", "shelfsync/v1/WH2/gw-01/up", true, false},
	{RoleGateway, "WH1/gw-01", "shelfsync/v1/WH1/alerts", true, false},
	{RoleGateway, "WH1/gw-01", "shelfsync/v1/WH1/gw-01/down", false, true},
	{RoleGateway, "WH1/gw-01", "shelfsync/v1/WH1/gw-02/down", false, false},
	{RoleGateway, "WH1/gw-01", "shelfsync/v1/WH1/+/down", false, false},
	{RoleGateway, "WH1/gw-01", "shelfsync/v1/+/+/down", false, false},
	{RoleGateway, "WH1/gw-01", "#", false, false},
	{RoleGateway, "WH1/gw-01", "shelfsync/v1/WH1/gw-01/up", false, false},
	{RoleGateway, "WH1/gw-01", "$share/x/shelfsync/v1/+/+/up", false, false},
	{RoleServer, "server", "shelfsync/v1/+/+/up", false, true},
	{RoleServer, "server", "shelfsync/v1/+/+/status", false, true},
	{RoleServer, "server", "$share/shelfsync/shelfsync/v1/+/+/up", false, true},
	{RoleServer, "server", "shelfsync/v1/WH1/gw-01/up", false, true},
	{RoleServer, "server", "shelfsync/v1/#", false, false},
	{RoleServer, "server", "shelfsync/v1/+/+/down", false, false},
	{RoleServer, "server", "shelfsync/v1/WH1/gw-01/down", true, true},
	{RoleServer, "server", "shelfsync/v1/WH1/alerts", true, true},
	{RoleServer, "server", "shelfsync/v1/channels/shop/availability", true, true},
	{RoleServer, "server", "shelfsync/v1/WH1/gw-01/status", true, true},
	{RoleServer, "server", "shelfsync/v1/owners/acme/alerts", true, true},
	{RoleServer, "server", "shelfsync/v1/owners/acme/channels/shop/availability", true, true},
	{RoleGateway, "WH1/gw-01", "shelfsync/v1/owners/acme/alerts", true, false},
	{RoleServer, "server", "shelfsync/v1/WH1/gw-01/up", true, false},
	{RoleServer, "server", "other/WH1/gw-01/down", true, false},
	{RoleNone, "monitor", "shelfsync/v1/+/+/status", false, false},
	{RoleNone, "", "shelfsync/v1/WH1/gw-01/up", true, false},
	// IDs may hold '.': NATS files such a level as one subject token.
	{RoleGateway, "WH.1/gw.01", "shelfsync/v1/WH.1/gw.01/up", true, true},
	{RoleGateway, "WH.1/gw.01", "shelfsync/v1/WH.1/gw.01/down", false, true},
	{RoleGateway, "WH.1/gw.01", "shelfsync/v1/WH/1/gw.01/up", true, false},
	{RoleGateway, "WH.1/gw.01", "shelfsync/v1/WH.1/gw/01/down", false, false},
}

func TestACL(t *testing.T) {
	h := NewAuth(AuthConfig{})
	for _, tc := range aclCases {
		require.Equal(t, tc.ok, h.allowed(tc.role, tc.id, tc.topic, tc.write), "%v %s %s write=%v", tc.role, tc.id, tc.topic, tc.write)
	}
	require.Equal(t, RoleServer, h.roleOf("server"))
	require.Equal(t, RoleGateway, h.roleOf("WH1/gw-01"))
	require.Equal(t, RoleNone, h.roleOf("WH1/gw/01"))
	require.Equal(t, RoleNone, h.roleOf("WH1/+"))
	require.Equal(t, RoleNone, h.roleOf("monitor"))
}

func TestPasswords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	require.NoError(t, SetPassword(path, "WH9/legacy-01", "s3cret"))
	require.NoError(t, SetPassword(path, "WH9/legacy-02", "other"))
	require.NoError(t, SetPassword(path, "WH9/legacy-01", "n3w")) // replace
	p, err := LoadPasswords(path)
	require.NoError(t, err)
	require.True(t, p.Get().Check("WH9/legacy-01", "n3w"))
	require.False(t, p.Get().Check("WH9/legacy-01", "s3cret"))
	require.True(t, p.Get().Check("WH9/legacy-02", "other"))
	require.False(t, p.Get().Check("WH9/legacy-03", "other"))
	b, _ := os.ReadFile(path)
	require.NotContains(t, string(b), "n3w", "only hashes are stored")
	require.Equal(t, 2, strings.Count(string(b), "\n"))
	require.Error(t, SetPassword(path, "a:b", "x"))
	require.Error(t, SetPassword(path, "WH/+", "x"))

	for _, bad := range []string{"nocolon", "u:plaintext", "u:$7$x$AAAA$AAAA", "u:$6$AAAA$short", "a:$6$\nb"} {
		_, err := ParsePasswords([]byte(bad))
		require.ErrorIs(t, err, ErrBadPasswordFile, bad)
	}
}

// TestIntegrationPasswordsMosquittoCompatible checks that files written by
// mosquitto_passwd are read here. Without the tool it skips, unless
// SHELFSYNC_INTEGRATION is set (make test-integration): then it fails.
func TestIntegrationPasswordsMosquittoCompatible(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		if os.Getenv("SHELFSYNC_INTEGRATION") != "" {
			t.Fatal("SHELFSYNC_INTEGRATION is set but mosquitto_passwd is not installed (deploy/dev/services.sh mosquitto)")
		}
		t.Skip("mosquitto_passwd not installed (deploy/dev/services.sh mosquitto)")
	}
	path := filepath.Join(t.TempDir(), "passwd")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	out, err := exec.Command(bin, "-b", path, "WH9/legacy-01", "pa55word").CombinedOutput()
	require.NoError(t, err, string(out))
	p, err := LoadPasswords(path)
	require.NoError(t, err)
	require.True(t, p.Get().Check("WH9/legacy-01", "pa55word"))
	require.False(t, p.Get().Check("WH9/legacy-01", "wrong"))
}

func FuzzParsePasswords(f *testing.F) {
	f.Add([]byte("# c\nWH1/gw:$7$101$c2FsdHNhbHRzYWx0$" + strings.Repeat("A", 86) + "==\n"))
	f.Add([]byte("u:$6$c2FsdA==$" + strings.Repeat("A", 86) + "==\n"))
	f.Add([]byte("u:$7$99999999999$x$y"))
	f.Add([]byte(":\n:::\n$$$$"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tbl, err := ParsePasswords(b)
		if err != nil {
			return
		}
		for u, e := range tbl {
			if u == "" {
				t.Fatal("empty username accepted")
			}
			if e.iter <= 1000 {
				_ = tbl.Check(u, "x")
			}
		}
	})
}

// FuzzACL: whatever topic or filter a client sends, a gateway may write only
// its own up/status and read only its own down; the server never gets '#'.
func FuzzACL(f *testing.F) {
	for _, s := range []string{"shelfsync/v1/WH1/gw-01/up", "shelfsync/v1/+/+/up", "$share/g/shelfsync/v1/+/+/status", "#", "shelfsync/v1/WH1/gw-01/down/#", "shelfsync/v1//gw-01/up", "+/+/+/+/+"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	h := NewAuth(AuthConfig{})
	f.Fuzz(func(t *testing.T, topic string, write bool) {
		if h.allowed(RoleGateway, "WH1/gw-01", topic, write) {
			want := "shelfsync/v1/WH1/gw-01/down"
			if write && topic != "shelfsync/v1/WH1/gw-01/up" && topic != "shelfsync/v1/WH1/gw-01/status" || !write && topic != want {
				t.Fatalf("gateway allowed %q write=%v", topic, write)
			}
		}
		if h.allowed(RoleServer, "server", topic, write) && strings.Contains(topic, "#") {
			t.Fatalf("server allowed %q", topic)
		}
		if h.allowed(RoleNone, "x", topic, write) {
			t.Fatal("no role, no access")
		}
	})
}
