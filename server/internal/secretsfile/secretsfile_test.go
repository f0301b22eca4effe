package secretsfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func parseLines(b []byte) ([]string, error) {
	s := strings.TrimSpace(string(b))
	if strings.Contains(s, "bad") {
		return nil, errors.New("malformed")
	}
	return strings.Fields(s), nil
}

// TestReload: a change is seen after CheckEvery, not before; a malformed
// file keeps the last good value and says why; a fixed file is taken again.
func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets")
	require.NoError(t, os.WriteFile(path, []byte("a b"), 0o600))
	f, err := Load(path, "test file", parseLines)
	require.NoError(t, err)
	now := time.Unix(1000, 0)
	f.now = func() time.Time { return now }
	require.Equal(t, []string{"a", "b"}, f.Get())

	require.NoError(t, os.WriteFile(path, []byte("a b c"), 0o600))
	require.Equal(t, []string{"a", "b"}, f.Get(), "not looked at again within CheckEvery")
	now = now.Add(CheckEvery)
	require.Equal(t, []string{"a", "b", "c"}, f.Get())

	require.NoError(t, os.WriteFile(path, []byte("bad file"), 0o600))
	now = now.Add(CheckEvery)
	require.Equal(t, []string{"a", "b", "c"}, f.Get(), "a malformed file keeps the last good value")
	require.ErrorContains(t, f.LastError(), "test file "+path+": malformed")

	require.NoError(t, os.Remove(path))
	now = now.Add(CheckEvery)
	require.Equal(t, []string{"a", "b", "c"}, f.Get())
	require.ErrorIs(t, f.LastError(), os.ErrNotExist)

	require.NoError(t, os.WriteFile(path, []byte("d"), 0o600))
	now = now.Add(CheckEvery)
	require.Equal(t, []string{"d"}, f.Get())
	require.NoError(t, f.LastError())
}

func TestLoadErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing"), "test file", parseLines)
	require.ErrorIs(t, err, os.ErrNotExist)
	path := filepath.Join(t.TempDir(), "secrets")
	require.NoError(t, os.WriteFile(path, []byte("bad"), 0o600))
	_, err = Load(path, "test file", parseLines)
	require.ErrorContains(t, err, "malformed")
}
