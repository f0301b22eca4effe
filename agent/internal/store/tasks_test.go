package store

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/agent/internal/session"
	"github.com/shelfsync/shelfsync/protocol"
)

func byID(ts []protocol.Task) []protocol.Task {
	out := slices.Clone(ts)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if out == nil {
		out = []protocol.Task{}
	}
	return out
}

// scanOrder and scanOpen are the full scans the indexes replace.
func scanOrder(t require.TestingT, s *Store, order string) []protocol.Task {
	var out []protocol.Task
	for _, tk := range s.Lookup().Tasks() {
		if tk.Order == order {
			out = append(out, tk)
		}
	}
	return byID(out)
}

func scanOpen(t require.TestingT, s *Store) []protocol.Task {
	raw, err := s.Tasks()
	require.NoError(t, err)
	var out []protocol.Task
	for _, tk := range raw {
		if openTask(tk) {
			lt, ok := s.Lookup().Task(tk.ID)
			require.True(t, ok)
			out = append(out, lt)
		}
	}
	return byID(out)
}

// checkIndex asserts that the indexed reads equal full scans.
func checkIndex(t require.TestingT, s *Store, orders []string) {
	for _, o := range orders {
		got, err := s.OrderTasks(o)
		require.NoError(t, err)
		require.Equal(t, scanOrder(t, s, o), byID(got), "order %q", o)
	}
	got, err := s.OpenTasks()
	require.NoError(t, err)
	require.Equal(t, scanOpen(t, s), byID(got), "open tasks")
}

// TestIndexedTaskReadsEqualAFullScan (property): for random sequences of
// downstream task batches (new tasks, updates that change status or
// order), local closes by pick sessions and prunes at random times, the
// tasks of every order read by the index, and the open tasks, equal what
// a scan of every task finds; a prune never drops an open task.
func TestIndexedTaskReadsEqualAFullScan(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		dir, err := os.MkdirTemp("", "tasks-prop")
		require.NoError(rt, err)
		defer os.RemoveAll(dir)
		s, err := Open(Options{Dir: dir, Small: true, TaskRetention: time.Hour})
		require.NoError(rt, err)
		defer s.Close()
		clk := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		s.now = func() time.Time { return clk }
		orders := []string{"", "O1", "O2", "O3"}
		ids := []string{"T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8"}
		statuses := []string{"", "open", "done", "short", "cancelled"}
		var last uint64
		for i, n := 0, rapid.IntRange(1, 25).Draw(rt, "steps"); i < n; i++ {
			switch rapid.IntRange(0, 3).Draw(rt, "action") {
			case 0, 1: // a downstream batch
				var batch []protocol.Task
				for j, m := 0, rapid.IntRange(1, 4).Draw(rt, "batch"); j < m; j++ {
					batch = append(batch, protocol.Task{
						ID:       rapid.SampledFrom(ids).Draw(rt, "id"),
						Kind:     rapid.SampledFrom([]string{"pick", "count"}).Draw(rt, "kind"),
						Location: "L1", SKU: "S", Qty: 2,
						Order:  rapid.SampledFrom(orders).Draw(rt, "order"),
						Status: rapid.SampledFrom(statuses).Draw(rt, "status"),
					})
				}
				last++
				require.NoError(rt, s.ApplyDownItems(Down{Tasks: batch}, 0, last))
			case 2: // a pick session closes a task here
				id := rapid.SampledFrom(ids).Draw(rt, "closed")
				_, err := s.Commit(context.Background(), &Commit{Device: "d", KeepSession: true,
					Ops:     []protocol.Op{{Kind: protocol.OpPick, Location: "L1", SKU: "S", Qty: 1, Refs: &protocol.Refs{Task: id}}},
					Notices: []protocol.Notice{{ID: fmt.Sprintf("n%d", i), Kind: protocol.NoticeTaskClose, Ref: id, Qty: 1}}})
				require.NoError(rt, err)
			case 3: // time passes and closed tasks are pruned
				clk = clk.Add(time.Duration(rapid.IntRange(0, 120).Draw(rt, "minutes")) * time.Minute)
				before := scanOpen(rt, s)
				held := map[string][]protocol.Task{}
				for _, o := range orders[1:] {
					held[o] = scanOrder(rt, s, o)
				}
				_, err := s.PruneTasks(clk)
				require.NoError(rt, err)
				require.Equal(rt, before, scanOpen(rt, s), "a prune never drops an open task")
				for _, o := range orders[1:] {
					after := scanOrder(rt, s, o)
					if len(after) > 0 {
						require.Equal(rt, held[o], after, "an order's tasks go together or not at all")
					}
					for _, tk := range held[o] {
						if openTask(tk) {
							require.Equal(rt, held[o], after, "an order with an open task keeps every task")
							break
						}
					}
				}
			}
			checkIndex(rt, s, orders[1:])
		}
	})
}

func applyTasks(t *testing.T, s *Store, last *uint64, ts ...protocol.Task) {
	t.Helper()
	*last++
	require.NoError(t, s.ApplyDownItems(Down{Tasks: ts}, 0, *last))
}

func taskIDs(t *testing.T, s *Store) []string {
	t.Helper()
	ts, err := s.Tasks()
	require.NoError(t, err)
	var out []string
	for _, tk := range ts {
		out = append(out, tk.ID)
	}
	sort.Strings(out)
	return out
}

// TestPruneDropsClosedTasksButNotWhatAPackNeeds: with a 24 h retention,
// a closed count task goes 24 h after it closed and an open task never;
// the closed pick tasks of an order stay while one of its tasks is open,
// until 24 h after its last task closed, while a saved session (a pack in
// progress) names the order, and while its ship awaits the server — and
// go at the next sweep once the server confirmed that ship.
func TestPruneDropsClosedTasksButNotWhatAPackNeeds(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), Small: true, TaskRetention: 24 * time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	clk := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return clk }
	var last uint64
	pick := func(id, order, status string) protocol.Task {
		return protocol.Task{ID: id, Kind: "pick", Location: "A-1", SKU: "MILK", Qty: 1, Order: order, Status: status, Picked: 1}
	}
	applyTasks(t, s, &last,
		protocol.Task{ID: "C1", Kind: "count", Location: "A-1", Status: "done"},
		protocol.Task{ID: "C2", Kind: "count", Location: "A-1"},
		pick("P1a", "O1", "done"), pick("P1b", "O1", ""), // O1: the remainder of a short pick is still open
		pick("P2", "O2", "done"), // O2: a pack of it is in progress
		pick("P3", "O3", "done"), // O3: shipped here, not yet confirmed
		pick("P4", "O4", "short"),
	)
	_, err = s.Commit(context.Background(), &Commit{Device: "pack-1", Session: mustCBOR(t, session.Station{Session: &session.State{Kind: session.Pack, Order: "O2"}})})
	require.NoError(t, err)
	commit(t, s, &Commit{Device: "pack-2", Notices: []protocol.Notice{{ID: "ship/O3/1", Kind: protocol.NoticeShip, Ref: "O3", Qty: 1}}})

	prune := func(at time.Time) []string {
		t.Helper()
		_, err := s.PruneTasks(at)
		require.NoError(t, err)
		checkIndex(t, s, []string{"O1", "O2", "O3", "O4"})
		return taskIDs(t, s)
	}
	all := []string{"C1", "C2", "P1a", "P1b", "P2", "P3", "P4"}
	require.Equal(t, all, prune(clk.Add(23*time.Hour)), "nothing is past its retention")

	clk = clk.Add(20 * time.Hour)
	applyTasks(t, s, &last, pick("P1b", "O1", "done")) // O1's last task closes
	require.Equal(t, []string{"C2", "P1a", "P1b", "P2", "P3"}, prune(clk.Add(5*time.Hour)),
		"C1 and O4 went; O1 closed its last task 5 h ago, O2 is being packed, O3's ship is unconfirmed; C2 is open")

	require.Equal(t, []string{"C2", "P2", "P3"}, prune(clk.Add(24*time.Hour)), "O1 goes 24 h after its last close")

	_, err = s.Commit(context.Background(), &Commit{Device: "pack-1", EndSession: true})
	require.NoError(t, err)
	require.NoError(t, s.ApplyDownItems(Down{NoticeAcks: []string{"ship/O3/1"}}, 0, last))
	require.Equal(t, []string{"C2"}, prune(clk.Add(24*time.Hour)), "the pack ended; the server confirmed O3's ship")
	require.Equal(t, []string{"C2"}, prune(clk.Add(1000*time.Hour)), "an open task is never dropped")

	got, err := s.OrderTasks("O1")
	require.NoError(t, err)
	require.Empty(t, got)
	require.Zero(t, s.Lookup().Picked("P1a"), "what was picked against a dropped task goes with it")
}

// TestShippedOrderTasksGoAtTheNextSweep: an order this gateway packed and
// shipped, confirmed by the server, needs its pick tasks no more: they go
// at the next sweep, however recently they closed.
func TestShippedOrderTasksGoAtTheNextSweep(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), Small: true})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	var last uint64
	applyTasks(t, s, &last, protocol.Task{ID: "P1", Kind: "pick", Order: "O1", Qty: 1, Status: "done"},
		protocol.Task{ID: "P2", Kind: "pick", Order: "O2", Qty: 1, Status: "done"})
	commit(t, s, &Commit{Device: "d", Notices: []protocol.Notice{{ID: "ship/O1/1", Kind: protocol.NoticeShip, Ref: "O1", Qty: 1}}})
	require.NoError(t, s.ApplyDownItems(Down{NoticeAcks: []string{"ship/O1/1"}}, 0, last))
	n, err := s.PruneTasks(time.Now())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{"P2"}, taskIDs(t, s))
}

// TestNegativeTaskRetentionKeepsEveryTask: --task-retention below zero
// turns pruning off.
func TestNegativeTaskRetentionKeepsEveryTask(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), Small: true, TaskRetention: -1})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	var last uint64
	applyTasks(t, s, &last, protocol.Task{ID: "C1", Kind: "count", Status: "done"})
	n, err := s.PruneTasks(time.Now().Add(10000 * time.Hour))
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, []string{"C1"}, taskIDs(t, s))
}

// TestOlderDataDirectoryIsIndexedOnOpen: a data directory written by an
// agent without the task index (tasks under t/ only, no ti/ keys, no
// m/task-index) opens with the index built — more tasks than one
// indexing transaction takes — so order reads, open tasks and pruning
// work on it; its closed tasks count their retention from the upgrade.
func TestOlderDataDirectoryIsIndexedOnOpen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Small: true})
	require.NoError(t, err)
	n := taskIndexBatch*2 + 17
	// Written the old way: the task records alone.
	wb := s.db.NewWriteBatch()
	for i := range n {
		tk := protocol.Task{ID: fmt.Sprintf("T%05d", i), Kind: "pick", Location: "A-1", SKU: "S", Qty: 1, Order: fmt.Sprintf("O%d", i%50), Status: "done"}
		if i%10 == 0 {
			tk.Status = ""
		}
		b, err := protocol.Marshal(tk)
		require.NoError(t, err)
		require.NoError(t, wb.Set([]byte(pTask+tk.ID), b))
	}
	require.NoError(t, wb.Flush())
	require.NoError(t, s.db.DropPrefix([]byte("ti/"), []byte(kTaskIndex)))
	require.NoError(t, s.db.View(func(txn *badger.Txn) error {
		ok, err := has(txn, kTaskIndex)
		require.False(t, ok)
		return err
	}))
	require.NoError(t, s.Close())

	opened := time.Now()
	s, err = Open(Options{Dir: dir, Small: true, TaskRetention: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	got, err := s.OrderTasks("O7")
	require.NoError(t, err)
	require.Len(t, got, n/50+1)
	checkIndex(t, s, []string{"O0", "O7", "O49"})
	open, err := s.OpenTasks()
	require.NoError(t, err)
	require.Len(t, open, (n+9)/10)

	dropped, err := s.PruneTasks(opened.Add(30 * time.Minute))
	require.NoError(t, err)
	require.Zero(t, dropped, "retention counts from the upgrade")
	want := 0 // the tasks of the orders with no open task (O1…O9, O11…)
	for i := range n {
		if i%50%10 != 0 {
			want++
		}
	}
	dropped, err = s.PruneTasks(opened.Add(2 * time.Hour))
	require.NoError(t, err)
	require.Equal(t, want, dropped, "the orders with an open task (O0, O10, …) keep theirs")
	got, err = s.OrderTasks("O10")
	require.NoError(t, err)
	require.Len(t, got, n/50+1)
	got, err = s.OrderTasks("O7")
	require.NoError(t, err)
	require.Empty(t, got)
	checkIndex(t, s, []string{"O0", "O7", "O49"})
}

func mustCBOR(t *testing.T, v any) []byte {
	t.Helper()
	b, err := protocol.Marshal(v)
	require.NoError(t, err)
	return b
}
