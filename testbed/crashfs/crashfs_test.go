package crashfs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
)

// mapperEnv names the file a re-executed test binary writes through a
// shared mapping (see TestMain and mapWrite).
const mapperEnv = "CRASHFS_TEST_MAP_WRITE"

// TestMain runs the tests, or, re-executed by mapWrite, only the mapping
// writer.
func TestMain(m *testing.M) {
	if path := os.Getenv(mapperEnv); path != "" {
		if err := mapAndWrite(path, os.Getenv(mapperEnv+"_SYNC") == "1"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

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

// TestCrashMmap: bytes written through a shared mapping are durable after
// msync and lost without it (Badger writes its memtable log that way).
//
// The mapping is written by another process (this test binary run again),
// as Badger's is by the agent: the FUSE server runs in this process, and
// a mapping of a crashfs file used here deadlocks with it. A goroutine
// faulting on a page waits in the kernel for the server and cannot be
// preempted, so a garbage collection starting meanwhile (the server's
// allocations start one) waits for it forever while the server goroutine
// that would answer waits for the collection; and munmap of a dirty
// mapping writes it back through the server while holding the address
// space's lock, which the server's own threads need to grow the heap or
// take a page fault. The test hung both ways while it mapped in-process
// and, killed, stayed a zombie flushing its open file to its own dead
// server.
func TestCrashMmap(t *testing.T) {
	f := mustMount(t, Options{})
	synced, unsynced := filepath.Join(f.Dir(), "synced"), filepath.Join(f.Dir(), "unsynced")
	mapWrite(t, synced, true)
	mapWrite(t, unsynced, false)
	for _, path := range []string{synced, unsynced} {
		if got := content(path); got[:6] != "mapped" {
			t.Fatalf("before the crash %s = %q", filepath.Base(path), got[:6])
		}
	}
	syncDir(t, f.Dir())
	if err := f.Crash(); err != nil {
		t.Fatal(err)
	}
	if got := content(synced); len(got) != 4096 || got[:6] != "mapped" {
		t.Errorf("synced mapping lost: %q (%d bytes)", got[:min(6, len(got))], len(got))
	}
	if got := content(unsynced); len(got) != 4096 || got[:6] != "\x00\x00\x00\x00\x00\x00" {
		t.Errorf("unsynced mapping survived the crash: %q (%d bytes)", got[:min(6, len(got))], len(got))
	}
}

// mapWrite has a child process create path (4096 bytes, fsynced), write
// "mapped" at its start through a shared mapping, msync it when sync, and
// unmap and close it.
func mapWrite(t *testing.T, path string, sync bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), mapperEnv+"="+path, fmt.Sprintf("%s_SYNC=%d", mapperEnv, map[bool]int{true: 1}[sync]))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mapping writer on %s: %v: %s", path, err, out)
	}
}

// mapAndWrite is mapWrite's child.
func mapAndWrite(path string, sync bool) (err error) {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, fh.Close()) }()
	if err := fh.Truncate(4096); err != nil {
		return err
	}
	if err := fh.Sync(); err != nil {
		return err
	}
	m, err := syscall.Mmap(int(fh.Fd()), 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return err
	}
	copy(m, "mapped")
	if sync {
		if err := msync(m); err != nil {
			return err
		}
	}
	return syscall.Munmap(m)
}

// msync flushes a shared mapping (MS_SYNC), as Badger's z.Msync does.
func msync(b []byte) error {
	_, _, e := syscall.Syscall(syscall.SYS_MSYNC, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MS_SYNC)
	if e != 0 {
		return e
	}
	return nil
}
