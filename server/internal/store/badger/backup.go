package badger

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	bdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
)

// A backup file is backupMagic, Badger's backup stream, and a footer
// "\nsha256:<hex of everything before the footer>\n", so that a copy cut
// short or damaged is refused before anything is loaded.
const (
	backupMagic  = "shelfsync-backup/1\n"
	footerPrefix = "\nsha256:"
	footerLen    = len(footerPrefix) + 64 + 1
)

// Backup writes a consistent backup of the whole store to w while the
// server keeps running: it reads one snapshot (one read timestamp), so
// every batch is in it whole or not at all. Restore puts it back.
//
// Badger's stream splits the key space into ranges (by table, and every
// 10,000 memtable entries) and, outside its managed mode, each of its
// NumGo producers opens a read transaction of its own: ranges read at
// different instants. A watermark read after a commit and the stock it
// covers read before it made a restored server claim an op it did not
// hold — the gateway resent only after the watermark, and that op was
// lost (one confirmed pick in about 1 chaos run in 13). One producer
// reads every range in its one transaction.
func (s *Store) Backup(ctx context.Context, w io.Writer) error {
	h := sha256.New()
	cw := &ctxWriter{ctx: ctx, w: io.MultiWriter(w, h)}
	if _, err := io.WriteString(cw, backupMagic); err != nil {
		return err
	}
	st := s.db.NewStream()
	st.NumGo = 1
	st.LogPrefix = "shelfsync backup"
	// A key the stream cannot read must fail the backup, not leave it
	// out of a backup that still looks whole. The stream skips a key
	// whose reader returns an error with only a warning, and Badger's
	// value read itself only logs a value-log read it cannot do (a
	// missing or damaged value-log file) and hands back an empty value.
	// So the key reader Backup installs is wrapped (the stream calls the
	// thread-id variant when asked to): an error, or an empty value where
	// the key's latest version records one, is the backup's error, which
	// stops the stream at its next write.
	var (
		mu      sync.Mutex
		readErr error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if readErr == nil {
			readErr = err
		}
	}
	st.UseKeyToListWithThreadId = true
	st.KeyToListWithThreadId = func(key []byte, it *bdb.Iterator, _ int) (*pb.KVList, error) {
		item := it.Item()
		want := !item.IsDeletedOrExpired() && item.ValueSize() > 0
		list, err := st.KeyToList(key, it)
		switch {
		case err != nil:
			fail(fmt.Errorf("backup: cannot read key %q: %w", key, err))
		case want && (list == nil || len(list.Kv) == 0 || len(list.Kv[0].Value) == 0):
			err = fmt.Errorf("backup: cannot read key %q: its value (%d bytes) reads back empty (a value-log file missing or damaged)", key, item.ValueSize())
			fail(err)
		}
		return list, err
	}
	st.FinishThread = func(int) (*pb.KVList, error) { return &pb.KVList{}, nil }
	cw.failed = func() error { mu.Lock(); defer mu.Unlock(); return readErr }
	_, err := st.Backup(cw, 0)
	if ferr := cw.failed(); ferr != nil {
		return ferr
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s%x\n", footerPrefix, h.Sum(nil))
	return err
}

// ctxWriter stops a backup whose client went away, or that failed
// (failed, when set, says so).
type ctxWriter struct {
	ctx    context.Context
	w      io.Writer
	failed func() error
}

func (c *ctxWriter) Write(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if c.failed != nil {
		if err := c.failed(); err != nil {
			return 0, err
		}
	}
	return c.w.Write(b)
}

// ErrNotBackup: the file is not a complete shelfsync backup.
var ErrNotBackup = errors.New("not a complete shelfsync backup (another file, or a copy cut short or damaged)")

// checkBackup verifies a backup's magic and checksum and returns the
// reader of its Badger stream.
func checkBackup(r io.ReaderAt, size int64) (io.Reader, error) {
	if size < int64(len(backupMagic)+footerLen) {
		return nil, ErrNotBackup
	}
	head := make([]byte, len(backupMagic))
	if _, err := r.ReadAt(head, 0); err != nil || string(head) != backupMagic {
		return nil, ErrNotBackup
	}
	foot := make([]byte, footerLen)
	if _, err := r.ReadAt(foot, size-int64(footerLen)); err != nil {
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size-int64(footerLen))); err != nil {
		return nil, err
	}
	if string(foot) != fmt.Sprintf("%s%x\n", footerPrefix, h.Sum(nil)) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrNotBackup)
	}
	body := int64(len(backupMagic))
	return io.NewSectionReader(r, body, size-int64(footerLen)-body), nil
}

// Restore loads a backup file written by Backup into dir, which must not
// hold a store, and gives the state a new identity (epoch): gateways that
// talk to it see another epoch, resend what it lacks from their retention
// and rebuild their downstream (protocol SPEC.md §6.1). It returns the new
// epoch.
func Restore(dir string, f *os.File) (epoch string, err error) {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return "", fmt.Errorf("restore into %s: the directory is not empty; restore into a new directory (shelfsync-server restore moves the old one aside)", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	body, err := checkBackup(f, st.Size())
	if err != nil {
		return "", fmt.Errorf("restore from %s: %w", f.Name(), err)
	}
	db, err := bdb.Open(bdb.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil).WithNumVersionsToKeep(1))
	if err != nil {
		return "", fmt.Errorf("restore: open %s: %w", dir, err)
	}
	defer func() {
		if r := recover(); r != nil { // Badger's Load trusts its input
			db.Close()
			epoch, err = "", fmt.Errorf("restore: %w: %v", ErrNotBackup, r)
		}
	}()
	if err := db.Load(body, 256); err != nil {
		db.Close()
		return "", fmt.Errorf("restore: load the backup: %w", err)
	}
	// The old identity goes: Open makes a new one.
	if err := db.Update(func(txn *bdb.Txn) error { return txn.Delete([]byte(pfxEpoch)) }); err != nil {
		db.Close()
		return "", err
	}
	if err := db.Close(); err != nil {
		return "", err
	}
	s, err := Open(Options{Dir: dir})
	if err != nil {
		return "", err
	}
	return s.Epoch(), s.Close()
}

// BackupDir backs up the store in dir while no server uses it.
func BackupDir(ctx context.Context, dir string, w io.Writer) error {
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		return fmt.Errorf("backup: %s holds no store: %w", dir, err)
	}
	s, err := Open(Options{Dir: dir})
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Backup(ctx, w)
}

// CheckUnused reports an error when a process holds the store in dir (a
// running server): it takes, and releases, the lock Badger holds on the
// directory itself (flock; its LOCK file only names the holder).
func CheckUnused(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("the store in %s is in use (stop the shelfsync-server that runs on it first): %w", dir, err)
	}
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
