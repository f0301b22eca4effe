package devices

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/agent/internal/session"
	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/testbed"
)

func freeOf(t *testing.T, dir string) int64 {
	n, err := testbed.FreeBytes(dir)
	require.NoError(t, err)
	return int64(n)
}

func fill(t *testing.T, path string, keep int64) {
	require.NoError(t, testbed.FillDisk(path, uint64(keep)))
}

// TestIntegrationAgentDiskFull: on a 96 MiB tmpfs the agent confirms scans
// until its data disk drops below the reserve, then refuses each scan with
// a bad beep and "disk full" and records nothing — also once the disk is
// completely full (Badger's mapped files would SIGBUS if it wrote) — and
// confirms scans again by itself when space returns. Every confirmed scan
// is in the store after a reopen.
func TestIntegrationAgentDiskFull(t *testing.T) {
	disk := testbed.TmpfsDir(t, "96m")
	db := filepath.Join(disk, "db")
	open := func() *store.Store {
		st, err := store.Open(store.Options{Dir: db, Small: true, DiskReserve: 24 << 20, DiskLow: 40 << 20})
		require.NoError(t, err)
		return st
	}
	st := open()
	m, err := New(Config{ReceivingLoc: "RCV"}, st)
	require.NoError(t, err)
	ctx := context.Background()
	scan := func(raw string) ScanLog {
		e, err := m.Scan(ctx, "s1", raw)
		if e.Verdict == session.Good {
			require.NoError(t, err)
		}
		return e
	}
	require.Equal(t, session.Good, scan("CMD:RECEIVE").Verdict)
	good := 0
	for i := 0; i < 20; i++ {
		require.Equal(t, session.Good, scan("SKU:A").Verdict)
		good++
	}
	require.False(t, st.Disk().Full)

	filler := filepath.Join(disk, "filler")
	fill(t, filler, 20<<20) // below the 24 MiB reserve
	d := st.Disk()
	require.True(t, d.Full, "%+v", d)
	require.True(t, d.Low)
	before, err := st.Positions()
	require.NoError(t, err)
	e := scan("SKU:A")
	require.Equal(t, session.Bad, e.Verdict)
	require.Contains(t, e.Reason, "disk full")

	fill(t, filler, 0) // now completely full
	require.Less(t, freeOf(t, disk), int64(1<<20))
	for i := 0; i < 5; i++ {
		e = scan("SKU:A")
		require.Equal(t, session.Bad, e.Verdict)
		require.Contains(t, e.Reason, "disk full")
	}
	after, err := st.Positions()
	require.NoError(t, err)
	require.Equal(t, before.LastSeq, after.LastSeq, "no op recorded while the disk is full")

	require.NoError(t, os.Remove(filler)) // space returns: scans resume by themselves
	for i := 0; i < 5; i++ {
		require.Equal(t, session.Good, scan("SKU:A").Verdict)
		good++
	}
	require.False(t, st.Disk().Full)
	require.NoError(t, st.Close())

	st = open()
	defer st.Close()
	rows, err := st.Stock("", "")
	require.NoError(t, err)
	require.Equal(t, []store.StockRow{{Location: "RCV", SKU: "A", OnHand: int64(good)}}, rows, "every confirmed scan survived")
}
