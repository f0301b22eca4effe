package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/testbed"
)

// guideBlock is one fenced code block of docs/INTEGRATION.md.
type guideBlock struct{ lang, code string }

var fence = regexp.MustCompile("(?ms)^```([a-z]+)\n(.*?)^```")

func guideBlocks(t *testing.T) []guideBlock {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "INTEGRATION.md"))
	require.NoError(t, err)
	var out []guideBlock
	for _, m := range fence.FindAllStringSubmatch(string(b), -1) {
		out = append(out, guideBlock{m[1], m[2]})
	}
	return out
}

// onlyBlock returns the one block of lang.
func onlyBlock(t *testing.T, blocks []guideBlock, lang string) string {
	t.Helper()
	var found []string
	for _, b := range blocks {
		if b.lang == lang {
			found = append(found, b.code)
		}
	}
	require.Len(t, found, 1, "docs/INTEGRATION.md has one %s block", lang)
	return found[0]
}

// TestIntegratorsGuideFollowedLiterally runs docs/INTEGRATION.md against a
// running server as an integrator would: its Python webhook receiver and
// its Go one are started from the page's code blocks, and every sh block
// runs in order in one bash — load master data by API and CSV, opening
// stock, a channel, take an order (and replay it), register the webhook,
// ping it. Then: the receivers verified the signatures of what the server
// sent (the order, availability, the pings) and reject a body whose
// signature does not match.
func TestIntegratorsGuideFollowedLiterally(t *testing.T) {
	t.Parallel() // its own server, receivers, ports and directories
	blocks := guideBlocks(t)
	c := newCluster(t)
	dir := t.TempDir()
	const secret = "a-secret-the-guide-test-shares"

	start := func(name, bin string, args ...string) (*testbed.Proc, string) {
		port := freePort(t)
		_, p, _ := strings.Cut(port, ":")
		proc, err := testbed.Start(testbed.Spec{Name: name, Bin: bin, Args: args, Dir: dir,
			Env: []string{"WEBHOOK_SECRET=" + secret, "PORT=" + p}})
		require.NoError(t, err)
		t.Cleanup(func() { proc.Stop(syscall.SIGKILL) })
		waitFor(t, 60*time.Second, name+" listening", func() bool {
			resp, err := http.Get("http://" + port + "/")
			if err == nil {
				resp.Body.Close()
			}
			return err == nil
		})
		return proc, "http://" + port
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "receiver.py"), []byte(onlyBlock(t, blocks, "python")), 0o644))
	py, pyURL := start("receiver.py", "python3", "receiver.py")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "receiver.go"), []byte(onlyBlock(t, blocks, "go")), 0o644))
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "receiver-go"), "receiver.go")
	build.Dir, build.Env = dir, append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "the guide's Go receiver builds: %s", out)
	gor, goURL := start("receiver-go", filepath.Join(dir, "receiver-go"))

	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	n := 0
	for _, b := range blocks {
		if b.lang == "sh" {
			script.WriteString(b.code)
			n++
		}
	}
	require.GreaterOrEqual(t, n, 10, "the guide's shell steps")
	sh := exec.CommandContext(t.Context(), "bash", "-c", script.String())
	sh.Dir = dir
	sh.Env = append(os.Environ(), "SHELFSYNC=http://"+c.httpAddr, "WEBHOOK_URL="+pyURL+"/shelfsync", "WEBHOOK_SECRET="+secret)
	out, err = sh.CombinedOutput()
	require.NoError(t, err, "the guide's shell steps, in order:\n%s", out)

	// What the steps made, read back from the server.
	var order struct {
		Status string
		Lines  []struct{ SKU, Qty, Reserved any }
	}
	getJSON(t, "http://"+c.httpAddr+"/api/v1/orders/wh1/web-1001", &order)
	require.Equal(t, "open", order.Status)
	var th struct {
		SafetyStock int64 `json:"safety_stock"`
		Seasonal    []any
	}
	getJSON(t, "http://"+c.httpAddr+"/api/v1/masterdata/wh1/thresholds/MUG-BLUE", &th)
	require.Equal(t, int64(1), th.SafetyStock, "loaded by CSV with its safety stock")
	require.Len(t, th.Seasonal, 1, "and its season")

	// The Go receiver gets an endpoint of its own, and a ping.
	var ep struct{ ID string }
	require.Equal(t, http.StatusCreated, c.call("POST", "/api/v1/webhooks", map[string]any{"url": goURL + "/", "events": []string{"order"}, "secret": secret}, &ep))
	require.Equal(t, http.StatusAccepted, c.call("POST", "/api/v1/webhooks/"+ep.ID+"/ping", nil, nil))

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("receiver.py:\n%s\nreceiver-go:\n%s", py.Output(), gor.Output())
		}
	})
	waitFor(t, 30*time.Second, "the Python receiver verified the order, availability and the ping", func() bool {
		o := py.Output()
		return strings.Contains(o, "verified order ") && strings.Contains(o, "verified availability ") && strings.Contains(o, "verified ping ")
	})
	waitFor(t, 30*time.Second, "the Go receiver verified the ping", func() bool { return strings.Contains(gor.Output(), "verified ping ") })
	require.NotContains(t, py.Output(), "rejected", "every delivery of the server verifies")

	// A body that is not what was signed is refused by both.
	for _, url := range []string{pyURL + "/shelfsync", goURL + "/"} {
		req, err := http.NewRequest("POST", url, strings.NewReader(`{"event":"order.created","forged":true}`))
		require.NoError(t, err)
		req.Header.Set("X-Shelfsync-Signature", "sha256=0000000000000000000000000000000000000000000000000000000000000000")
		req.Header.Set("X-Shelfsync-Event", "order")
		req.Header.Set("X-Shelfsync-Delivery", "forged-1")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s takes a forged body", url)
	}
	waitFor(t, 10*time.Second, "both receivers say they rejected it", func() bool {
		return strings.Contains(py.Output(), "rejected forged-1") && strings.Contains(gor.Output(), "rejected forged-1")
	})
}
