package crashfs

import (
	"os"
	"path/filepath"
	"testing"
)

func mustMount(t *testing.T, o Options) *FS {
	t.Helper()
	return MountT(t, t.TempDir(), o)
}

func write(t *testing.T, path, s string, sync bool) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := fh.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
}

func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

func content(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

// TestCrashKeepsOnlyWhatWasSynced (Strict): synced bytes and synced
// directory entries survive a crash; unsynced writes, creations, renames
// and removals do not.
func TestCrashKeepsOnlyWhatWasSynced(t *testing.T) {
	f := mustMount(t, Options{Strict: true})
	d := f.Dir()
	p := func(n string) string { return filepath.Join(d, n) }
	if err := os.Mkdir(p("sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, p("a"), "durable", true)
	write(t, p("gone"), "created, synced, entry never synced", true)
	write(t, p("sub/b"), "entry synced, bytes not", false)
	syncDir(t, p("sub"))
	syncDir(t, d) // a, sub (and gone: removed below after this sync)
	write(t, p("a"), "durable then overwritten", false)
	write(t, p("late"), "after the dir sync", true)
	if err := os.Rename(p("gone"), p("renamed")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p("sub/b")); err != nil {
		t.Fatal(err)
	}
	if got := content(p("a")); got != "durable then overwritten" {
		t.Fatalf("before the crash a = %q", got)
	}

	if err := f.Crash(); err != nil {
		t.Fatal(err)
	}
	if got := content(p("a")); got != "durable" {
		t.Errorf("a = %q, want its synced bytes", got)
	}
	if got := content(p("gone")); got != "created, synced, entry never synced" {
		t.Errorf("gone = %q: the rename was never synced, so the old name is back", got)
	}
	for _, n := range []string{"late", "renamed"} {
		if _, err := os.Stat(p(n)); !os.IsNotExist(err) {
			t.Errorf("%s survived although its entry was never synced (%v)", n, err)
		}
	}
	if got := content(p("sub/b")); got != "" {
		t.Errorf("sub/b = %q: its entry was synced and its bytes were not, so it is back empty", got)
	}
}

// TestCrashJournaled: without Strict, a file's fsync also makes every
// pending namespace change durable (a journal commit), and nothing after
// the last fsync survives.
func TestCrashJournaled(t *testing.T) {
	f := mustMount(t, Options{})
	p := func(n string) string { return filepath.Join(f.Dir(), n) }
	if err := os.Mkdir(p("sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, p("sub/a"), "a", false)
	write(t, p("b"), "b", true) // commits sub, sub/a (empty: its bytes were never synced) and b
	write(t, p("c"), "c", false)
	if err := os.Rename(p("b"), p("b2")); err != nil {
		t.Fatal(err)
	}
	if err := f.Crash(); err != nil {
		t.Fatal(err)
	}
	if got := content(p("sub/a")); got != "" {
		t.Errorf("sub/a = %q, want it there and empty", got)
	}
	if got := content(p("b")); got != "b" {
		t.Errorf("b = %q (the rename after the last fsync is lost)", got)
	}
	for _, n := range []string{"c", "b2"} {
		if _, err := os.Stat(p(n)); !os.IsNotExist(err) {
			t.Errorf("%s survived although nothing was synced after it (%v)", n, err)
		}
	}
}
