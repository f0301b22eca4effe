package webhooks

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/server/internal/store"
)

var errAfterHook = errors.New("the caller's transaction fails after EnqueueTx")

// checkEnqueueTx: a delivery EnqueueTx wrote exists exactly when the
// caller's transaction commits — none when it fails after the hook — and
// is delivered once, without any other wake, also when the transaction
// commits well after the hook poked the worker.
func checkEnqueueTx(t *testing.T, e *env, rcv *counter) {
	ctx := context.Background()
	alerts, err := e.m.Create(ctx, Endpoint{URL: rcv.srv.URL, Events: []string{EventAlert}})
	require.NoError(t, err)
	orders, err := e.m.Create(ctx, Endpoint{URL: rcv.srv.URL + "/orders", Events: []string{EventOrder}, Warehouses: []string{"wh1"}})
	require.NoError(t, err)

	// f fails after the hook: nothing queued, the caller's write gone too.
	err = e.db.Update(func(tx store.Tx) error {
		if err := tx.Set([]byte("test/record"), []byte("lost")); err != nil {
			return err
		}
		if err := e.m.EnqueueTx(tx, Event{Type: EventAlert, Warehouse: "wh1", Body: []byte(`{"n":0}`)}); err != nil {
			return err
		}
		return errAfterHook
	})
	require.ErrorIs(t, err, errAfterHook)
	require.Zero(t, e.m.pendingTotal())
	require.NoError(t, e.db.View(func(tx store.Tx) error {
		_, found, err := tx.Get([]byte("test/record"))
		require.False(t, found)
		return err
	}))

	// A transaction that commits 200 ms after the hook poked the worker.
	err = e.db.Update(func(tx store.Tx) error {
		if err := tx.Set([]byte("test/record"), []byte("kept")); err != nil {
			return err
		}
		if err := e.m.EnqueueTx(tx, Event{Type: EventAlert, Warehouse: "wh1", Body: []byte(`{"n":1}`)}); err != nil {
			return err
		}
		if err := e.m.EnqueueTx(tx, Event{Type: EventOrder, Warehouse: "wh2", Body: []byte(`{"other warehouse":true}`)}); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond) // the commit comes well after the poke: not a wait for anything
		return nil
	})
	require.NoError(t, err)
	require.Eventually(t, func() bool { n, _ := rcv.received(); return n == 1 }, 3*time.Second, 5*time.Millisecond,
		"delivered after the commit without another wake")
	rcv.mu.Lock()
	require.Equal(t, `{"n":1}`, rcv.body[alerts.ID+"-1"], "the failed transaction took no sequence number")
	rcv.mu.Unlock()

	// An order event of wh1: only the order endpoint wants it.
	require.NoError(t, e.db.Update(func(tx store.Tx) error {
		return e.m.EnqueueTx(tx, Event{Type: EventOrder, Warehouse: "wh1", Body: []byte(`{"order":1}`)})
	}))
	eventually(t, "the order event", func() bool { n, _ := rcv.received(); return n == 2 })
	rcv.mu.Lock()
	require.Equal(t, `{"order":1}`, rcv.body[orders.ID+"-1"])
	rcv.mu.Unlock()
	time.Sleep(50 * time.Millisecond) // negative window: a second delivery would come by now
	n, dup := rcv.received()
	require.Equal(t, 2, n)
	require.Zero(t, dup)
	require.Zero(t, e.m.pendingTotal())
}

func TestEnqueueTxCommitsWithTheCaller(t *testing.T) {
	checkEnqueueTx(t, start(t, memDB(t), Config{}), newCounter(t))
}

func TestEnqueueTxCommitsWithTheCallerShared(t *testing.T) {
	checkEnqueueTx(t, replica(t, sharedDB(t), "A", time.Second), newCounter(t))
}

// TestEnqueueTxRunsAgainWhenUpdateRetries: f loses a race and runs again;
// the event is queued and delivered once.
func TestEnqueueTxRunsAgainWhenUpdateRetries(t *testing.T) {
	db := memDB(t)
	rcv := newCounter(t)
	e := start(t, db, Config{})
	ep, err := e.m.Create(context.Background(), Endpoint{URL: rcv.srv.URL})
	require.NoError(t, err)
	runs := 0
	require.NoError(t, db.Update(func(tx store.Tx) error {
		runs++
		if _, _, err := tx.Get([]byte("test/raced")); err != nil {
			return err
		}
		if err := e.m.EnqueueTx(tx, Event{Type: EventAlert, Body: []byte(fmt.Sprintf(`{"run":%d}`, runs))}); err != nil {
			return err
		}
		if runs == 1 { // another writer changes what f read: f runs again
			return db.Update(func(tx store.Tx) error { return tx.Set([]byte("test/raced"), []byte{1}) })
		}
		return nil
	}))
	require.Equal(t, 2, runs)
	eventually(t, "delivered", func() bool { n, _ := rcv.received(); return n == 1 })
	time.Sleep(50 * time.Millisecond) // negative window: a rerun of f would deliver again by now
	n, dup := rcv.received()
	require.Equal(t, 1, n)
	require.Zero(t, dup)
	rcv.mu.Lock()
	require.Equal(t, `{"run":2}`, rcv.body[ep.ID+"-1"])
	rcv.mu.Unlock()
}

// TestEnqueueTxForAnEndpointOfAnotherReplica: B queues in a transaction
// for an endpoint A created a moment ago (B has no worker for it yet); it
// is delivered once.
func TestEnqueueTxForAnEndpointOfAnotherReplica(t *testing.T) {
	st := sharedDB(t)
	rcv := newCounter(t)
	a, b := replica(t, st, "A", time.Second), replica(t, st, "B", time.Second)
	ep, err := a.m.Create(context.Background(), Endpoint{URL: rcv.srv.URL})
	require.NoError(t, err)
	require.NoError(t, st.Update(func(tx store.Tx) error {
		return b.m.EnqueueTx(tx, Event{Type: EventAlert, Body: []byte(`{"from":"B"}`)})
	}))
	eventually(t, "delivered", func() bool { n, _ := rcv.received(); return n == 1 })
	time.Sleep(100 * time.Millisecond) // negative window: the other replica would deliver it again by now
	n, dup := rcv.received()
	require.Equal(t, 1, n)
	require.Zero(t, dup)
	rcv.mu.Lock()
	require.Equal(t, `{"from":"B"}`, rcv.body[ep.ID+"-1"])
	rcv.mu.Unlock()
}
