package devices

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/agent/internal/session"
	"github.com/shelfsync/shelfsync/agent/internal/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Dir: filepath.Join(t.TempDir(), "db"), Small: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestQtyOverflowScannedTwice: the finding was two good beeps and on_hand
// −2 for QTY:9223372036854775807 + item, twice. Now each QTY is a bad beep,
// the items are received one unit each, and nothing wraps.
func TestQtyOverflowScannedTwice(t *testing.T) {
	st := openStore(t)
	m, err := New(Config{ReceivingLoc: "RCV"}, st)
	require.NoError(t, err)
	ctx := context.Background()
	var verdicts []session.Verdict
	for _, raw := range []string{"CMD:RECEIVE", "QTY:9223372036854775807", "SKU:A", "QTY:9223372036854775807", "SKU:A", "CMD:DONE"} {
		e, err := m.Scan(ctx, "s1", raw)
		require.NoError(t, err)
		verdicts = append(verdicts, e.Verdict)
	}
	require.Equal(t, []session.Verdict{session.Good, session.Bad, session.Good, session.Bad, session.Good, session.Good}, verdicts)
	rows, err := st.Stock("", "")
	require.NoError(t, err)
	require.Equal(t, []store.StockRow{{Location: "RCV", SKU: "A", OnHand: 2}}, rows)
}

// TestInvalidOpIsRefusedBeforeCommit: an op the server would quarantine
// (here a sku with an ESC in it, which the barcode path lets through as
// SKU: text) is a bad beep and is not committed.
func TestInvalidOpIsRefusedBeforeCommit(t *testing.T) {
	st := openStore(t)
	m, err := New(Config{ReceivingLoc: "RCV"}, st)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = m.Scan(ctx, "s1", "CMD:RECEIVE")
	require.NoError(t, err)
	e, err := m.Scan(ctx, "s1", "SKU:A\u202eB")
	require.NoError(t, err)
	require.Equal(t, session.Bad, e.Verdict, e.Reason)
	require.Contains(t, e.Reason, "control character")
	p, err := st.Positions()
	require.NoError(t, err)
	require.Zero(t, p.LastSeq, "nothing committed")
}

// TestClosedStoreGivesBadBeep: a store that cannot commit (closed here)
// turns the scan into a bad beep, and nothing is recorded.
func TestClosedStoreGivesBadBeep(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	st, err := store.Open(store.Options{Dir: dir, Small: true})
	require.NoError(t, err)
	m, err := New(Config{ReceivingLoc: "RCV"}, st)
	require.NoError(t, err)
	ctx := context.Background()
	e, err := m.Scan(ctx, "s1", "CMD:RECEIVE")
	require.NoError(t, err)
	require.Equal(t, session.Good, e.Verdict)
	require.NoError(t, st.Close())
	e, err = m.Scan(ctx, "s1", "SKU:A")
	require.Error(t, err)
	require.Equal(t, session.Bad, e.Verdict)
	require.Contains(t, e.Reason, "not saved")

	st, err = store.Open(store.Options{Dir: dir, Small: true})
	require.NoError(t, err)
	defer st.Close()
	p, err := st.Positions()
	require.NoError(t, err)
	require.Zero(t, p.LastSeq, "no op recorded")
}
