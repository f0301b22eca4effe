package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shelfsync/shelfsync/server/internal/api"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// runBackup: shelfsync-server backup --out FILE (--url URL | --data DIR).
func runBackup(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shelfsync-server backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to write the backup to (required); written to FILE.partial, then renamed when complete")
	url := fs.String("url", "", "HTTP address of a running server (e.g. http://127.0.0.1:8080): an online backup through GET /api/v1/admin/backup")
	token := fs.String("token", os.Getenv("SHELFSYNC_API_TOKEN"), "admin API token for --url (default $SHELFSYNC_API_TOKEN; not needed without --api-tokens)")
	data := fs.String("data", "", "data directory of a stopped server: an offline backup (use --url while the server runs)")
	timeout := fs.Duration("timeout", time.Hour, "give up after this long")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: shelfsync-server backup --out FILE (--url URL | --data DIR)

Writes a consistent backup of the embedded (Badger) store to FILE: online
from a running server (--url; an admin token with --api-tokens), or from
the data directory of a stopped one (--data). Put it back with
'shelfsync-server restore'. On PostgreSQL use pg_dump or point-in-time
recovery instead (deploy/RECOVERY.md).

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *out == "" || (*url == "") == (*data == "") {
		fmt.Fprintln(stderr, "error: give --out and exactly one of --url (running server) or --data (stopped server)")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	partial := *out + ".partial"
	f, err := os.OpenFile(partial, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v (remove a leftover %s from an interrupted backup)\n", err, partial)
		return 1
	}
	start := time.Now()
	if *url != "" {
		err = backupOnline(ctx, strings.TrimRight(*url, "/"), *token, f)
	} else {
		err = badger.BackupDir(ctx, *data, f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(partial, *out)
	}
	if err != nil {
		os.Remove(partial)
		fmt.Fprintln(stderr, "error: backup failed, nothing written:", err)
		return 1
	}
	if d, err := os.Open(filepath.Dir(*out)); err == nil {
		_ = d.Sync() // the rename itself survives a crash
		d.Close()
	}
	st, _ := os.Stat(*out)
	fmt.Fprintf(stdout, "backup written to %s (%d bytes, %s)\n", *out, st.Size(), time.Since(start).Round(time.Millisecond))
	return 0
}

func backupOnline(ctx context.Context, base, token string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/admin/backup", nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s %s", req.URL, resp.Status, strings.TrimSpace(string(b)))
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("reading the backup stream: %w", err)
	}
	if st := resp.Trailer.Get(api.BackupStatusTrailer); st != "ok" {
		return fmt.Errorf("the server did not complete the backup (%q); see its log", st)
	}
	return nil
}

// runRestore: shelfsync-server restore --data DIR --from FILE.
func runRestore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shelfsync-server restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "data directory of the (stopped) server to restore into (required); what it holds is moved aside to DIR.before-restore-TIME, never deleted")
	from := fs.String("from", "", "backup file written by 'shelfsync-server backup' (required)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: shelfsync-server restore --data DIR --from FILE

Puts a backup back as the server's state, with a new identity (epoch). Stop
the server first. Gateways notice the new identity when they reconnect,
resend from their retention every op the backup lacks, and rebuild their
downstream; what lies beyond their retention the server records as a
lost-ops conflict with count tasks (protocol SPEC.md §6.1, deploy/RECOVERY.md).

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *data == "" || *from == "" {
		fmt.Fprintln(stderr, "error: --data and --from are required")
		return 2
	}
	f, err := os.Open(*from)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	defer f.Close()
	dir := filepath.Clean(*data)
	aside := ""
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		// A running server holds the store's lock: refuse rather than move
		// its directory from under it.
		if err := badger.CheckUnused(dir); err != nil {
			fmt.Fprintln(stderr, "error:", err)
			return 1
		}
		aside = fmt.Sprintf("%s.before-restore-%s", dir, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(dir, aside); err != nil {
			fmt.Fprintln(stderr, "error: move the current data aside:", err)
			return 1
		}
	}
	epoch, err := badger.Restore(dir, f)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		if aside != "" {
			os.RemoveAll(dir)
			if rerr := os.Rename(aside, dir); rerr != nil {
				fmt.Fprintf(stderr, "error: and the previous data could not be put back from %s: %v\n", aside, rerr)
			} else {
				fmt.Fprintln(stderr, "the previous data is back in place")
			}
		}
		return 1
	}
	fmt.Fprintf(stdout, "restored %s into %s; new identity (epoch) %s\n", *from, dir, epoch)
	if aside != "" {
		fmt.Fprintf(stdout, "the previous data is in %s (delete it once the restored server runs)\n", aside)
	}
	return 0
}
