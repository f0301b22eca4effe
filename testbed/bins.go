package testbed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Bins are the paths of the three shelfsync programs.
type Bins struct {
	Server string // shelfsync-server
	Agent  string // shelfsync-agent
	Sim    string // shelfsync-sim
}

// BinDirEnv names a directory that already holds the three binaries (for
// instance bin/ after `make build`); when it is set, Build builds nothing.
const BinDirEnv = "SHELFSYNC_TEST_BIN_DIR"

var programs = []struct{ name, pkg string }{
	{"shelfsync-server", "./server/cmd/shelfsync-server"},
	{"shelfsync-agent", "./agent/cmd/shelfsync-agent"},
	{"shelfsync-sim", "./firmware-sim/cmd/shelfsync-sim"},
}

func binsIn(dir string) Bins {
	return Bins{
		Server: filepath.Join(dir, "shelfsync-server"),
		Agent:  filepath.Join(dir, "shelfsync-agent"),
		Sim:    filepath.Join(dir, "shelfsync-sim"),
	}
}

var (
	buildMu sync.Mutex
	builds  = map[string]*buildResult{}
)

type buildResult struct {
	once sync.Once
	bins Bins
	err  error
}

// Build returns the three binaries, built from the repository that holds
// the working directory (BuildAt with root "").
func Build(ctx context.Context) (Bins, error) { return BuildAt(ctx, "") }

// BuildAt returns the three binaries built from the repository at root
// ("": the one that holds the working directory). They are built once per test run: every test
// binary that `go test ./...` starts has that go command as its parent, so
// they share one directory keyed by the parent's pid and the repository
// path, and the first to get its lock builds while the others wait. A later
// run builds afresh (the Go build cache keeps that quick), and Build removes
// the directories of runs whose go command has exited.
func BuildAt(ctx context.Context, root string) (Bins, error) {
	buildMu.Lock()
	r := builds[root]
	if r == nil {
		r = &buildResult{}
		builds[root] = r
	}
	buildMu.Unlock()
	r.once.Do(func() { r.bins, r.err = build(ctx, root) })
	return r.bins, r.err
}

func build(ctx context.Context, root string) (Bins, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		b := binsIn(dir)
		for _, p := range []string{b.Server, b.Agent, b.Sim} {
			if _, err := os.Stat(p); err != nil {
				return b, fmt.Errorf("%s=%s: %w (run make build, or unset it)", BinDirEnv, dir, err)
			}
		}
		return b, nil
	}
	if root == "" {
		r, err := FindRoot(".")
		if err != nil {
			return Bins{}, err
		}
		root = r
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return Bins{}, err
	}
	removeStale()
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), binPrefix+hex.EncodeToString(sum[:6])+"-"+strconv.Itoa(os.Getppid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Bins{}, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return Bins{}, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return Bins{}, fmt.Errorf("lock %s: %w", dir, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing unlocks too
	stamp := filepath.Join(dir, ".built")
	if _, err := os.Stat(stamp); err == nil {
		return binsIn(dir), nil
	}
	for _, p := range programs {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, p.name), p.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return Bins{}, fmt.Errorf("go build %s: %w\n%s", p.pkg, err, out)
		}
	}
	if err := os.WriteFile(stamp, nil, 0o644); err != nil {
		return Bins{}, err
	}
	return binsIn(dir), nil
}

// binPrefix starts the name of every run's binary directory:
// binPrefix + hash of the repository path + "-" + the go command's pid.
const binPrefix = "shelfsync-testbed-"

// removeStale removes the binary directories of earlier runs (of any
// checkout) whose go command is gone.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binPrefix+"*-*"))
	for _, d := range dirs {
		name := filepath.Base(d)
		pid, err := strconv.Atoi(name[strings.LastIndex(name, "-")+1:])
		if err != nil || pid == os.Getppid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

// FindRoot returns the repository root (the directory holding go.work),
// searching upwards from dir.
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.work above %s: run from inside the shelfsync repository", dir)
		}
	}
}
