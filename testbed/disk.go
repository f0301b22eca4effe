package testbed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// MountTmpfs mounts a tmpfs of size (mount's syntax: "96m") on dir, so that
// a test can fill a daemon's disk; it needs root (CI runs as root). The
// caller unmounts with UnmountTmpfs.
func MountTmpfs(dir, size string) error {
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		return fmt.Errorf("mount a %s tmpfs on %s (needs root): %w", size, dir, err)
	}
	return nil
}

// UnmountTmpfs detaches a tmpfs MountTmpfs mounted.
func UnmountTmpfs(dir string) error { return syscall.Unmount(dir, syscall.MNT_DETACH) }

// FreeBytes returns the free space of dir's file system.
func FreeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// FillDisk appends to the file path until its file system has about keep
// bytes free, or with keep 0 until it is full (ENOSPC).
func FillDisk(path string, keep uint64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		free, err := FreeBytes(filepath.Dir(path))
		if err != nil {
			return err
		}
		n := uint64(len(buf))
		if keep > 0 && free <= keep+n {
			return nil
		}
		if free < n {
			n = 4096
		}
		if _, err := f.Write(buf[:n]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return err
		}
	}
}

// DiskTB is the part of testing.TB that TmpfsDir uses.
type DiskTB interface {
	Helper()
	TempDir() string
	Fatal(args ...any)
	Skip(args ...any)
	Cleanup(func())
}

// TmpfsDir returns a directory on a fresh tmpfs of size, unmounted when the
// test ends. Without root the test skips, or fails when Integration() says
// the outside services must be there.
func TmpfsDir(t DiskTB, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := MountTmpfs(dir, size); err != nil {
		if Integration() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	t.Cleanup(func() { _ = UnmountTmpfs(dir) })
	return dir
}
