package badger

import (
	"fmt"
	"testing"

	bdb "github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
)

// scanCountTasks is what closeCountTasks read before the index: every task
// of the warehouse, filtered.
func scanCountTasks(t require.TestingT, txn *bdb.Txn, wh, loc string) []protocol.Task {
	all, err := recordTx{txn: txn}.Tasks(wh)
	require.NoError(t, err)
	out := []protocol.Task{}
	for _, task := range all {
		if openCount(task) && task.Location == loc {
			out = append(out, task)
		}
	}
	return out
}

// TestOpenCountTasksEqualsTheScan: the count-task index answers exactly
// what listing every task of the warehouse and filtering did — inside a
// transaction after its own writes, after commits, and after the index is
// rebuilt from the tasks (a data directory from before the index) — for
// random tasks written and rewritten (kind, status and location changing,
// IDs reused) in random transaction boundaries.
func TestOpenCountTasksEqualsTheScan(t *testing.T) {
	s, err := Open(Options{InMemory: true})
	require.NoError(t, err)
	defer s.Close()
	locs := []string{"A-01", "A-02", "B-01"}
	check := func(t *rapid.T, txn *bdb.Txn) {
		for _, wh := range []string{"wh1", "wh2"} {
			for _, loc := range locs {
				got, err := (&tx{txnLedger: txnLedger{txn: txn}}).OpenCountTasks(wh, loc)
				require.NoError(t, err)
				if got == nil {
					got = []protocol.Task{}
				}
				require.Equal(t, scanCountTasks(t, txn, wh, loc), got, "%s/%s", wh, loc)
			}
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		require.NoError(t, s.db.DropAll())
		n := rapid.IntRange(1, 40).Draw(t, "n")
		for i := 0; i < n; {
			end := min(n, i+rapid.IntRange(1, 6).Draw(t, "txn_tasks"))
			require.NoError(t, s.db.Update(func(txn *bdb.Txn) error {
				for ; i < end; i++ {
					task := protocol.Task{
						ID:       fmt.Sprintf("T%d", rapid.IntRange(1, 8).Draw(t, "id")),
						Kind:     rapid.SampledFrom([]string{"count", "pick"}).Draw(t, "kind"),
						Status:   rapid.SampledFrom([]string{"", "open", "done", "cancelled"}).Draw(t, "status"),
						Location: rapid.SampledFrom(locs).Draw(t, "loc"),
					}
					wh := rapid.SampledFrom([]string{"wh1", "wh2"}).Draw(t, "wh")
					if err := (&tx{txnLedger: txnLedger{txn: txn}}).PutTask(wh, task); err != nil {
						return err
					}
					if rapid.Bool().Draw(t, "check_inside") {
						check(t, txn)
					}
				}
				return nil
			}))
			require.NoError(t, s.db.View(func(txn *bdb.Txn) error { check(t, txn); return nil }))
		}
		// A directory from before the index: tasks, no index, no marker.
		require.NoError(t, s.db.DropPrefix([]byte(pfxCountTasks), []byte(keyTaskIdxBuilt)))
		require.NoError(t, s.buildTaskIndex())
		require.NoError(t, s.db.View(func(txn *bdb.Txn) error { check(t, txn); return nil }))
	})
}
