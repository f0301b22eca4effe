// Package crashfs is a file system for crash tests: mounted with FUSE, it
// keeps every file in memory and tracks, apart from what processes see,
// what has been made durable, and Crash throws the rest away as a power
// cut would.
//
// What is durable:
//   - a regular file's bytes (and size) as of its last fsync or fdatasync
//     (msync reaches it as one too: the kernel writes a mapping's dirty
//     pages back and then sends FUSE_FSYNC);
//   - a directory's entries (names and the files or directories they
//     point at) as of its last fsync — so a file created, renamed or
//     removed since is back as it was, with its own durable bytes;
//   - unless Strict: every directory's entries as of any fsync, of a file
//     or a directory. That is what journaling file systems do (ext4 in
//     its default data=ordered mode, XFS): an fsync commits the journal,
//     and the journal holds every pending namespace change. Strict is
//     POSIX's letter, where only a directory's own fsync makes its entries
//     durable.
//
// Everything else — writes never synced, in this process or still in the
// kernel's page cache, and entries of directories never synced — is gone
// after Crash, which unmounts, rebuilds the tree from its durable state and
// mounts it again (a fresh mount: no page cache survives). That is stricter
// than ext4's ordered mode, as LazyFS is: a program that is durable here
// is durable on any POSIX file system.
//
// Mounting needs root and /dev/fuse (no fusermount: go-fuse mounts with
// mount(2) itself). Memory-mapped files work (page cache on, no direct
// I/O), as Badger needs. File locks are the kernel's own (not forwarded).
//
// The server runs in the process that mounts, so that process must not map
// a crashfs file itself: a page fault on the mapping waits in the kernel
// for the server, and the Go runtime cannot preempt the faulting goroutine
// (a garbage collection then waits for it while the server waits for the
// collection), and munmap writes dirty pages back through the server while
// holding the address-space lock the server's threads need. Map files
// from another process, as the programs under test do; reading and
// writing with system calls is safe.
package crashfs

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/shelfsync/shelfsync/testbed"
)

// Size is the capacity statfs reports (free space is Size minus the bytes
// of every file's data).
const Size = 4 << 30

// FS is a mounted crash-test file system.
type FS struct {
	dir    string
	strict bool

	mu      sync.Mutex // guards every node's state and the fields below
	root    *dirNode
	server  *fuse.Server
	crashed bool // between Crash's start and its remount: writes are lost
	used    int64
	syncs   int
}

// Options tune a crashfs.
type Options struct {
	// Strict: a directory's entries are durable only through its own
	// fsync (POSIX), not through the fsync of any file (journaling).
	Strict bool
}

// Mount mounts an empty crash-test file system on dir.
func Mount(dir string, o Options) (*FS, error) {
	f := &FS{dir: dir, strict: o.Strict}
	f.root = f.newDir()
	if err := f.mount(); err != nil {
		return nil, err
	}
	// The mount point's entry is the parent's business; the root itself
	// exists durably from the start.
	return f, nil
}

// TB is the part of testing.TB that MountT uses.
type TB interface {
	Helper()
	Fatal(args ...any)
	Skip(args ...any)
	Cleanup(func())
}

// MountT mounts a crashfs on dir for a test, unmounted when it ends.
// Without root or /dev/fuse the test skips ("needs root"), or fails when
// testbed.Integration() says the environment must have them.
func MountT(t TB, dir string, o Options) *FS {
	t.Helper()
	f, err := Mount(dir, o)
	if err != nil {
		if testbed.Integration() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	t.Cleanup(func() { _ = f.Unmount() })
	return f
}

// Dir is where the file system is mounted.
func (f *FS) Dir() string { return f.dir }

// Syncs counts the fsync/fdatasync calls that made something durable.
func (f *FS) Syncs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncs
}

func (f *FS) mount() error {
	timeout := time.Duration(0) // the kernel asks us every time: no stale entries or sizes after a crash
	srv, err := fs.Mount(f.dir, f.root, &fs.Options{
		EntryTimeout: &timeout, AttrTimeout: &timeout, NegativeTimeout: &timeout,
		MountOptions: fuse.MountOptions{FsName: "crashfs", Name: "crashfs", DirectMountStrict: true, MaxWrite: 1 << 20},
	})
	if err != nil {
		return fmt.Errorf("mount crashfs on %s: %w (needs root and /dev/fuse)", f.dir, err)
	}
	f.mu.Lock()
	f.server = srv
	f.mu.Unlock()
	return nil
}

// Unmount detaches the file system.
func (f *FS) Unmount() error {
	f.mu.Lock()
	srv := f.server
	f.mu.Unlock()
	if srv == nil {
		return nil
	}
	var err error
	for range 50 { // a process just killed may still hold the mount for a moment
		if err = srv.Unmount(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		// Still busy (a file or mapping the kernel has not let go of yet).
		// The server runs in this process: left mounted, the kernel's last
		// requests at exit (flush, release) would wait for an answer from
		// a process that is exiting, and it never finishes (a test binary
		// once hung so, a zombie). MNT_FORCE aborts the FUSE connection —
		// every waiting and later request fails — and MNT_DETACH takes the
		// mount away.
		if ferr := syscall.Unmount(f.dir, syscall.MNT_FORCE|syscall.MNT_DETACH); ferr != nil {
			return fmt.Errorf("unmount crashfs on %s: %w; forced: %v", f.dir, err, ferr)
		}
		srv.Wait()
		return fmt.Errorf("unmount crashfs on %s: %w (forced: the connection was aborted)", f.dir, err)
	}
	srv.Wait()
	return nil
}

// Crash simulates a power cut: every write since the last sync of its
// file and every directory change since the last sync of its directory is
// dropped, and the file system is mounted again from what was durable.
// Processes using it must be dead (kill -9 first).
func (f *FS) Crash() error {
	f.mu.Lock()
	f.crashed = true // what the kernel writes back while unmounting is lost
	f.mu.Unlock()
	if err := f.Unmount(); err != nil {
		return err
	}
	f.mu.Lock()
	f.used = 0
	f.root = f.root.rebuild(f).(*dirNode)
	f.crashed = false
	f.mu.Unlock()
	return f.mount()
}

// node is what a directory entry points at.
type node interface {
	fs.InodeEmbedder
	// rebuild returns a fresh node holding this one's durable state.
	rebuild(f *FS) node
	mode() uint32
}

// dirNode is a directory. Its current entries are its Inode's children;
// durable holds the entries as of its last fsync.
type dirNode struct {
	fs.Inode
	fsys    *FS
	durable map[string]node
}

func (f *FS) newDir() *dirNode { return &dirNode{fsys: f, durable: map[string]node{}} }

func (d *dirNode) mode() uint32 { return syscall.S_IFDIR }

// rebuild makes a fresh directory of the durable entries, each rebuilt;
// OnAdd puts them in the new Inode tree.
func (d *dirNode) rebuild(f *FS) node {
	nd := f.newDir()
	for name, n := range d.durable {
		nd.durable[name] = n.rebuild(f)
	}
	return nd
}

var _ = (fs.NodeOnAdder)((*dirNode)(nil))

// OnAdd adds the durable entries as children (a rebuilt tree; empty for
// a new directory).
func (d *dirNode) OnAdd(ctx context.Context) {
	for _, name := range slices.Sorted(maps.Keys(d.durable)) {
		n := d.durable[name]
		ch := d.NewPersistentInode(ctx, n, fs.StableAttr{Mode: n.mode()})
		d.AddChild(name, ch, true) // NewPersistentInode ran a directory's own OnAdd
	}
}

func (d *dirNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o755
	return 0
}

func (d *dirNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return d.Getattr(ctx, fh, out)
}

func (d *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return d.fsys.statfs(out)
}

func (n *fileNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return n.fsys.statfs(out)
}

func (f *FS) statfs(out *fuse.StatfsOut) syscall.Errno {
	f.mu.Lock()
	used := f.used
	f.mu.Unlock()
	const bs = 4096
	out.Bsize, out.Frsize, out.NameLen = bs, bs, 255
	out.Blocks = Size / bs
	out.Bfree = uint64(max(Size-used, 0)) / bs
	out.Bavail = out.Bfree
	out.Files, out.Ffree = 1<<20, 1<<20
	return 0
}

func (d *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	n := &fileNode{fsys: d.fsys, perm: mode & 0o7777}
	return d.NewPersistentInode(ctx, n, fs.StableAttr{Mode: syscall.S_IFREG}), nil, 0, 0
}

func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	out.Mode = syscall.S_IFDIR | 0o755
	return d.NewPersistentInode(ctx, d.fsys.newDir(), fs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

// Unlink, Rmdir and Rename change only the current entries (go-fuse moves
// the Inode children once they return 0).
func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno { return 0 }

func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if ch := d.GetChild(name); ch != nil && len(ch.Children()) > 0 {
		return syscall.ENOTEMPTY
	}
	return 0
}

func (d *dirNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return 0
}

// Fsync makes the directory's current entries durable.
func (d *dirNode) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	d.fsys.mu.Lock()
	defer d.fsys.mu.Unlock()
	if d.fsys.crashed {
		return syscall.EIO
	}
	if d.fsys.strict {
		d.commit(false)
	} else {
		d.fsys.root.commit(true)
	}
	d.fsys.syncs++
	return 0
}

// commit makes d's current entries durable, and with all those of every
// directory below; fsys.mu is held.
func (d *dirNode) commit(all bool) {
	d.durable = map[string]node{}
	for name, ch := range d.Children() {
		n, ok := ch.Operations().(node)
		if !ok {
			continue
		}
		d.durable[name] = n
		if sub, ok := n.(*dirNode); ok && all {
			sub.commit(true)
		}
	}
}

// fileNode is a regular file: data is what processes see, synced what a
// crash leaves.
type fileNode struct {
	fs.Inode
	fsys         *FS
	perm         uint32
	data, synced []byte
	// dirty is the range of data written or resized since the last
	// fsync (lo < hi), which is all an fsync copies.
	lo, hi int64
}

// touch adds [lo, hi) to the dirty range; fsys.mu is held.
func (n *fileNode) touch(lo, hi int64) {
	if lo >= hi {
		return
	}
	if n.lo >= n.hi {
		n.lo, n.hi = lo, hi
		return
	}
	n.lo, n.hi = min(n.lo, lo), max(n.hi, hi)
}

func (n *fileNode) mode() uint32 { return syscall.S_IFREG }

func (n *fileNode) rebuild(f *FS) node {
	f.used += int64(len(n.synced))
	return &fileNode{fsys: f, perm: n.perm, data: slices.Clone(n.synced), synced: slices.Clone(n.synced)}
}

func (n *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_TRUNC != 0 {
		n.fsys.mu.Lock()
		n.resize(0)
		n.fsys.mu.Unlock()
	}
	return nil, 0, 0
}

// resize sets the data's length; fsys.mu is held.
func (n *fileNode) resize(size int64) {
	if n.fsys.crashed {
		return
	}
	n.fsys.used += size - int64(len(n.data))
	n.touch(min(size, int64(len(n.data))), max(size, int64(len(n.data))))
	if size <= int64(len(n.data)) {
		n.data = n.data[:size]
		return
	}
	n.data = append(n.data, make([]byte, size-int64(len(n.data)))...)
}

func (n *fileNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	out.Mode = syscall.S_IFREG | n.perm
	out.Size = uint64(len(n.data))
	out.Blocks = (out.Size + 511) / 512
	return 0
}

func (n *fileNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	n.fsys.mu.Lock()
	if sz, ok := in.GetSize(); ok {
		n.resize(int64(sz))
	}
	if m, ok := in.GetMode(); ok {
		n.perm = m & 0o7777
	}
	n.fsys.mu.Unlock()
	return n.Getattr(ctx, fh, out)
}

func (n *fileNode) Allocate(ctx context.Context, fh fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	if end := int64(off + size); mode&0x01 == 0 && end > int64(len(n.data)) { // not FALLOC_FL_KEEP_SIZE
		n.resize(end)
	}
	return 0
}

func (n *fileNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	off = min(off, int64(len(n.data)))
	end := min(off+int64(len(dest)), int64(len(n.data)))
	return fuse.ReadResultData(slices.Clone(n.data[off:end])), 0
}

func (n *fileNode) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	if n.fsys.crashed {
		return uint32(len(data)), 0 // the power is off: it lands nowhere
	}
	if end := off + int64(len(data)); end > int64(len(n.data)) {
		n.resize(end)
	}
	copy(n.data[off:], data)
	n.touch(off, off+int64(len(data)))
	return uint32(len(data)), 0
}

func (n *fileNode) Flush(ctx context.Context, fh fs.FileHandle) syscall.Errno { return 0 }

// Fsync makes the file's current bytes durable (fsync and fdatasync alike).
func (n *fileNode) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	n.fsys.mu.Lock()
	defer n.fsys.mu.Unlock()
	if n.fsys.crashed {
		return syscall.EIO
	}
	if len(n.synced) != len(n.data) {
		s := make([]byte, len(n.data))
		copy(s, n.synced)
		n.synced = s
	}
	if hi := min(n.hi, int64(len(n.data))); n.lo < hi {
		copy(n.synced[n.lo:hi], n.data[n.lo:hi])
	}
	n.lo, n.hi = 0, 0
	if !n.fsys.strict {
		n.fsys.root.commit(true) // the journal commit carries every pending namespace change
	}
	n.fsys.syncs++
	return 0
}

var (
	_ = (fs.NodeCreater)((*dirNode)(nil))
	_ = (fs.NodeMkdirer)((*dirNode)(nil))
	_ = (fs.NodeUnlinker)((*dirNode)(nil))
	_ = (fs.NodeRmdirer)((*dirNode)(nil))
	_ = (fs.NodeRenamer)((*dirNode)(nil))
	_ = (fs.NodeFsyncer)((*dirNode)(nil))
	_ = (fs.NodeStatfser)((*dirNode)(nil))
	_ = (fs.NodeGetattrer)((*dirNode)(nil))
	_ = (fs.NodeSetattrer)((*dirNode)(nil))
	_ = (fs.NodeOpener)((*fileNode)(nil))
	_ = (fs.NodeReader)((*fileNode)(nil))
	_ = (fs.NodeWriter)((*fileNode)(nil))
	_ = (fs.NodeFsyncer)((*fileNode)(nil))
	_ = (fs.NodeFlusher)((*fileNode)(nil))
	_ = (fs.NodeGetattrer)((*fileNode)(nil))
	_ = (fs.NodeSetattrer)((*fileNode)(nil))
	_ = (fs.NodeAllocater)((*fileNode)(nil))
	_ = (fs.NodeStatfser)((*fileNode)(nil))
)
