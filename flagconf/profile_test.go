package flagconf

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCPUProfileFlagWritesAProfile(t *testing.T) {
	var path string
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	RegisterCPUProfile(fs, &path)
	want := filepath.Join(t.TempDir(), "cpu.prof")
	if err := fs.Parse([]string{"--cpuprofile", want}); err != nil || path != want {
		t.Fatalf("--cpuprofile parsed to %q (err %v), want %q", path, err, want)
	}
	stop, err := StartCPUProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if fi, err := os.Stat(want); err != nil || fi.Size() == 0 {
		t.Fatalf("a stopped profile is written out: %v", err)
	}
	stop, err = StartCPUProfile("")
	if err != nil {
		t.Fatalf("no path: no profile, got %v", err)
	}
	stop()
	if _, err := StartCPUProfile(filepath.Join(t.TempDir(), "missing", "cpu.prof")); err == nil || !strings.Contains(err.Error(), "cpu profile") {
		t.Fatalf("an unwritable path: got %v", err)
	}
}
