package device

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDeps guards the drivers module's rule: besides the standard library,
// the device stack depends only on other drivers packages and
// go.bug.st/serial (with golang.org/x/sys under it).
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	require.NoError(t, err, string(out))
	allowed := []string{"github.com/shelfsync/shelfsync/drivers/", "go.bug.st/serial", "golang.org/x/sys/"}
	for _, dep := range strings.Fields(string(out)) {
		ok := false
		for _, prefix := range allowed {
			ok = ok || strings.HasPrefix(dep, prefix)
		}
		require.True(t, ok, "drivers/device must not depend on %s", dep)
	}
}
