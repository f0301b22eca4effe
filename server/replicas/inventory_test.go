package replicas

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

// TestIntegrationReplicasInventory runs what lives beside the ledger —
// master data, channel orders and availability, alerts, webhooks — on
// three replicas (warehouse partition) over one PostgreSQL and one Mosquitto,
// with three gateways scanning, a webhook receiver and an MQTT observer;
// the leader replica is killed with kill -9 mid-stream and restarted.
//
//   - master data put through one replica is served by the others, and
//     the apply on whichever replica holds a gateway's lease checks it (an
//     op at a location the warehouse does not define is quarantined, with
//     a conflict and its notification);
//   - orders taken, replayed, shipped and cancelled through different
//     replicas: one order per channel and external id, every replica's
//     GET agrees, each order event reaches the receiver once;
//   - each reorder crossing raises one alert, listed alike by every
//     replica; it and every change of it (acknowledged, cleared) is
//     published once on the alerts topic and delivered once to the webhook
//     receiver; each conflict's opening and end (negative stock, an
//     oversell, a quarantined op) likewise, without an alert item;
//   - availability (API of every replica, retained topic, last webhook)
//     is what the ledger and the open orders imply;
//   - leadership moves to another replica within seconds of the kill.
func TestIntegrationReplicasInventory(t *testing.T) {
	began := time.Now()
	c := newCluster(t, 3, modeLeases)
	g1, g2, g3 := c.addGateway("wh1", "g1"), c.addGateway("wh1", "g2"), c.addGateway("wh2", "g3")
	A, B, C := c.replicas[0], c.replicas[1], c.replicas[2]
	ctx := context.Background()
	db, err := pgx.Connect(ctx, c.dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })

	// ---- 1. master data and channels through A, served by B and C ----
	// NEG (where the adjustments push stock below zero) is not sellable
	// (a sellable negative key with nothing reserved raises no oversell
	// either: TestIntegrationReplicasKillAfterCommit checks it).
	locations := map[string][]map[string]any{
		"wh1": {{"code": "BIN-1", "type": "pick", "sellable": true, "rank": 1}, {"code": "BIN-2", "type": "pick", "sellable": true, "rank": 2}, {"code": "NEG", "type": "quarantine"}},
		"wh2": {{"code": "BIN-1", "type": "pick", "sellable": true, "rank": 1}, {"code": "NEG", "type": "quarantine"}},
	}
	defined := map[string]map[string]bool{}
	sellable := map[string]map[string]bool{}
	for wh, ls := range locations {
		defined[wh], sellable[wh] = map[string]bool{}, map[string]bool{}
		for _, l := range ls {
			defined[wh][l["code"].(string)] = true
			sellable[wh][l["code"].(string)] = l["sellable"] == true
		}
	}
	items := map[string][]string{"wh1": {"R1", "R2", "R3", "R4", "B1", "F1", "N-g1", "N-g2"}, "wh2": {"R1", "F2", "N-g3"}}
	// Reorder points: each sku crosses downward once (R3 twice, re-armed
	// by a receipt in between); see the scans below.
	thresholds := map[string][]map[string]any{
		"wh1": {{"sku": "R1", "reorder_point": 4, "reorder_qty": 10, "max": 20}, {"sku": "R2", "reorder_point": 4, "reorder_qty": 10}, {"sku": "R3", "reorder_point": 3, "reorder_qty": 5}},
		"wh2": {{"sku": "R1", "reorder_point": 2, "reorder_qty": 6}},
	}
	for _, wh := range []string{"wh1", "wh2"} {
		A.must(t, "POST", "/api/v1/masterdata/"+wh+"/locations", locations[wh], nil)
		var its []map[string]any
		for _, s := range items[wh] {
			its = append(its, map[string]any{"sku": s, "description": "item " + s})
		}
		A.must(t, "POST", "/api/v1/masterdata/"+wh+"/items", its, nil)
		A.must(t, "POST", "/api/v1/masterdata/"+wh+"/thresholds", thresholds[wh], nil)
		A.must(t, "PUT", "/api/v1/masterdata/"+wh+"/settings", map[string]any{"over_receipt_pct": 5, "skew_window_ms": 2000}, nil)
	}
	channels := []channelDef{{name: "web", sharePct: 100}, {name: "b2b", sharePct: 50, warehouses: []string{"wh1"}}}
	for _, ch := range channels {
		A.must(t, "PUT", "/api/v1/channels/"+ch.name, map[string]any{"share_pct": ch.sharePct, "warehouses": ch.warehouses}, nil)
	}
	for _, wh := range []string{"wh1", "wh2"} {
		for _, kind := range []string{"items", "locations", "thresholds", "settings"} {
			var want any
			A.must(t, "GET", "/api/v1/masterdata/"+wh+"/"+kind, nil, &want)
			for _, r := range []*replica{B, C} {
				var got any
				r.must(t, "GET", "/api/v1/masterdata/"+wh+"/"+kind, nil, &got)
				require.Equal(t, want, got, "replica %d serves the %s of %s put through replica 0", r.i, kind, wh)
			}
		}
		var th struct{ Items []struct{ SKU string } }
		C.must(t, "GET", "/api/v1/masterdata/"+wh+"/thresholds", nil, &th)
		require.Len(t, th.Items, len(thresholds[wh]))
	}
	channelsOf := func(r *replica) []string {
		var cs struct {
			Items []struct {
				Channel    string   `json:"channel"`
				SharePct   float64  `json:"share_pct"`
				Warehouses []string `json:"warehouses"`
			}
		}
		if _, err := r.call("GET", "/api/v1/channels", nil, &cs); err != nil {
			return nil
		}
		var out []string
		for _, x := range cs.Items {
			out = append(out, fmt.Sprintf("%s %v %v", x.Channel, x.SharePct, x.Warehouses))
		}
		return out
	}
	wantChannels := []string{"b2b 50 [wh1]", "web 100 []"}
	waitFor(t, 10*time.Second, "channels put through replica 0 listed by every replica", func() bool {
		for _, r := range c.replicas {
			if fmt.Sprint(channelsOf(r)) != fmt.Sprint(wantChannels) {
				return false
			}
		}
		return true
	})

	// Webhooks: alerts and orders to one endpoint, availability of the web
	// channel to another, added through the leader and pinged there, so
	// that the leader (the replica killed below) holds their delivery
	// leases and the kill moves them too.
	waitFor(t, 10*time.Second, "one leader", func() bool { return len(c.leaders()) == 1 })
	leader0 := c.leaders()[0]
	rcv := newHookReceiver(t)
	evID := rcv.register(t, leader0, "events", map[string]any{"events": []string{"alert", "conflict", "order"}})
	avID := rcv.register(t, leader0, "avail", map[string]any{"events": []string{"availability"}, "channels": []string{"web"}})
	for _, id := range []string{evID, avID} {
		leader0.must(t, "POST", "/api/v1/webhooks/"+id+"/ping", nil, nil)
	}
	for _, r := range c.replicas {
		var eps struct{ Items []struct{ ID string } }
		r.must(t, "GET", "/api/v1/webhooks", nil, &eps)
		var epIDs []string
		for _, e := range eps.Items {
			epIDs = append(epIDs, e.ID)
		}
		require.ElementsMatch(t, []string{evID, avID}, epIDs, "replica %d lists the endpoints added through replica %d", r.i, leader0.i)
	}
	waitFor(t, 10*time.Second, "both pings delivered", func() bool {
		return len(rcv.received("events", "ping")) > 0 && len(rcv.received("avail", "ping")) > 0
	})
	// leaseHolder returns the replica whose log says it took the endpoint's
	// delivery lease that the kv table names now.
	leaseHolder := func(ep string) *replica {
		v, ok, err := kv(ctx, db, "wh/l/"+ep)
		require.NoError(t, err)
		if !ok {
			return nil
		}
		var l struct {
			Holder string `cbor:"1,keyasint"`
		}
		require.NoError(t, protocol.Unmarshal(v, &l))
		for _, r := range c.replicas {
			if l.Holder != "" && strings.Contains(r.proc().Output(), "endpoint="+ep+" replica="+l.Holder) {
				return r
			}
		}
		return nil
	}

	// ---- orders: the test's book ----
	book := map[string]*wantOrder{}
	var bookMu sync.Mutex
	type orderBody struct {
		Warehouse, ID, Status, Channel string
		ExternalID                     string `json:"external_id"`
		Seq                            uint64
		Short                          []string
		Lines                          []struct {
			SKU                   string
			Qty, Picked, Reserved int64
		}
	}
	newOrder := func(ext, wh string, lines map[string]int64) map[string]any {
		var ls []map[string]any
		skus := make([]string, 0, len(lines))
		for s := range lines {
			skus = append(skus, s)
		}
		sort.Strings(skus)
		for _, s := range skus {
			ls = append(ls, map[string]any{"sku": s, "qty": lines[s]})
		}
		return map[string]any{"warehouse": wh, "channel": "web", "external_id": ext, "lines": ls}
	}
	record := func(o orderBody, lines map[string]int64) {
		bookMu.Lock()
		defer bookMu.Unlock()
		book[o.ID] = &wantOrder{wh: o.Warehouse, id: o.ID, status: o.Status, seq: o.Seq, lines: lines}
	}
	create := func(r *replica, ext, wh string, lines map[string]int64) orderBody {
		t.Helper()
		var o orderBody
		require.Equal(t, http.StatusCreated, r.must(t, "POST", "/api/v1/orders", newOrder(ext, wh, lines), &o), "order %s through replica %d", ext, r.i)
		require.Equal(t, "open", o.Status)
		record(o, lines)
		return o
	}
	replay := func(r *replica, ext, wh string, lines map[string]int64, want orderBody) {
		t.Helper()
		var o orderBody
		require.Equal(t, http.StatusOK, r.must(t, "POST", "/api/v1/orders", newOrder(ext, wh, lines), &o), "replay of %s through replica %d", ext, r.i)
		require.Equal(t, want.ID, o.ID, "the same channel and external id is the same order")
	}
	closeOrder := func(r *replica, o orderBody, action, status string) {
		t.Helper()
		var got orderBody
		r.must(t, "POST", "/api/v1/orders/"+o.Warehouse+"/"+o.ID+"/"+action, nil, &got)
		require.Equal(t, status, got.Status)
		bookMu.Lock()
		book[o.ID].status, book[o.ID].seq = status, got.Seq
		bookMu.Unlock()
	}
	var orderEvents []string // "order.created {id}" …
	event := func(ev, id string) { orderEvents = append(orderEvents, "order."+ev+" "+id) }
	// burst sends n orders of one B1 each at once, each to two replicas of
	// rs at the same time: one creates it, the other finds it.
	burst := func(prefix string, n int, rs []*replica) ([]orderBody, error) {
		type sent struct {
			codes [2]int
			o     [2]orderBody
			errs  [2]error
		}
		out := make([]sent, n)
		var wg sync.WaitGroup
		for i := range n {
			for j, r := range []*replica{rs[i%len(rs)], rs[(i+1)%len(rs)]} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out[i].codes[j], out[i].errs[j] = r.call("POST", "/api/v1/orders", newOrder(fmt.Sprint(prefix, i), "wh1", map[string]int64{"B1": 1}), &out[i].o[j])
				}()
			}
		}
		wg.Wait()
		var made []orderBody
		for i, x := range out {
			if err := errors.Join(x.errs[:]...); err != nil {
				return nil, err
			}
			if c := x.codes; !(c == [2]int{200, 201} || c == [2]int{201, 200}) || x.o[0].ID != x.o[1].ID {
				return nil, fmt.Errorf("order %s%d sent to two replicas: answers %v, orders %s and %s", prefix, i, c, x.o[0].ID, x.o[1].ID)
			}
			made = append(made, x.o[0])
		}
		return made, nil
	}
	var bursts []orderBody
	addBurst := func(made []orderBody) {
		for _, o := range made {
			record(o, map[string]int64{"B1": 1})
			event("created", o.ID)
		}
		bursts = append(bursts, made...)
	}

	alertsOf := func(r *replica) ([]map[string]any, error) {
		var as struct{ Items []map[string]any }
		_, err := r.call("GET", "/api/v1/alerts?limit=1000", nil, &as)
		return as.Items, err
	}
	alertKeys := func(r *replica) []string {
		as, err := alertsOf(r)
		if err != nil {
			return nil
		}
		var ks []string
		for _, a := range as {
			ks = append(ks, alertKey(a))
		}
		sort.Strings(ks)
		return ks
	}
	contains := func(have []string, want ...string) bool {
		n := map[string]int{}
		for _, k := range have {
			n[k]++
		}
		for _, k := range want {
			if n[k] == 0 {
				return false
			}
			n[k]--
		}
		return true
	}

	scan := func(g *gateway, lines ...string) {
		t.Helper()
		require.NoError(t, g.scan(lines...))
	}

	// ---- 2. receipts (and one op at a location wh2 does not define) ----
	scan(g1, "CMD:RECEIVE", "LOC:BIN-1", "QTY:10", "SKU:R1", "QTY:8", "SKU:R3", "QTY:100", "SKU:B1", "CMD:DONE")
	scan(g2, "CMD:RECEIVE", "LOC:BIN-2", "QTY:10", "SKU:R2", "QTY:5", "SKU:R4", "CMD:DONE")
	scan(g3, "CMD:RECEIVE", "LOC:BIN-1", "QTY:6", "SKU:R1", "CMD:DONE")
	// A gateway whose master data is behind the server's (here a client
	// that speaks the protocol but holds no location data) sends a receipt
	// at RECEIVING, which wh2 does not define: the replica that applies it
	// quarantines it. (A current agent refuses such a scan itself.)
	rogue := protocol.OpBatch{Header: protocol.Header{WH: "wh2", GW: "rogue"}, First: 1, Last: 1,
		Ops: []protocol.Op{{Seq: 1, HLC: protocol.MakeHLC(time.Now().UnixMilli(), 0), Kind: protocol.OpReceive, Location: "RECEIVING", SKU: "R1", Qty: 1}}}
	raw, err := protocol.Encode(&rogue)
	require.NoError(t, err)
	tok := c.obs.client.Publish(protocol.NewTopics("").Up("wh2", "rogue"), 1, false, raw)
	require.True(t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil, "publish the rogue batch: %v", tok.Error())
	c.settle(30 * time.Second)
	for _, r := range c.replicas {
		var q struct {
			Items []struct {
				Gateway, Reason string
				Op              struct{ Location string }
			}
		}
		waitFor(t, 30*time.Second, "the rogue op quarantined", func() bool {
			r.must(t, "GET", "/api/v1/quarantine?warehouse=wh2", nil, &q)
			return len(q.Items) > 0
		})
		require.Len(t, q.Items, 1, "replica %d: the op at an undefined location is quarantined", r.i)
		require.Equal(t, "RECEIVING", q.Items[0].Op.Location)
		require.Equal(t, "rogue", q.Items[0].Gateway)
		require.Contains(t, q.Items[0].Reason, "unknown location")
	}

	// ---- 3. orders through every replica, crossings and a conflict ----
	o1 := create(A, "1001", "wh1", map[string]int64{"R1": 2})
	event("created", o1.ID)
	// the same channel and external id sent to two replicas at once
	var (
		wg    sync.WaitGroup
		codes [2]int
		dup   [2]orderBody
		errs  [2]error
	)
	for i, r := range []*replica{B, C} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], errs[i] = r.call("POST", "/api/v1/orders", newOrder("1002", "wh1", map[string]int64{"R2": 1}), &dup[i])
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.ElementsMatch(t, []int{http.StatusCreated, http.StatusOK}, codes[:], "one replica creates the order, the other finds it")
	require.Equal(t, dup[0].ID, dup[1].ID)
	o2 := dup[0]
	record(o2, map[string]int64{"R2": 1})
	event("created", o2.ID)
	o3 := create(C, "1003", "wh2", map[string]int64{"R1": 1})
	event("created", o3.ID)
	o4 := create(B, "1004", "wh1", map[string]int64{"R4": 5}) // all 5 on hand
	event("created", o4.ID)
	scan(g2, "CMD:PICK", "LOC:BIN-2", "QTY:3", "SKU:R4", "CMD:DONE") // 3 leave for no order: 2 on hand, 5 reserved: oversold

	b1, err := burst("b1-", 20, c.replicas)
	require.NoError(t, err)
	addBurst(b1)

	scan(g1, "CMD:PICK", "LOC:BIN-1", "QTY:3", "SKU:R1", "QTY:4", "SKU:R1", "CMD:DONE") // wh1 R1 10 → 3: crossing
	scan(g1, "CMD:ADJUST", "LOC:NEG", "QTY:-1", "SKU:N-g1", "CMD:DONE")                 // negative stock
	scan(g1, "CMD:PICK", "LOC:BIN-1", "QTY:5", "SKU:R3", "CMD:DONE")                    // wh1 R3 8 → 3: crossing
	before := []string{"reorder wh1 R1", "reorder wh1 R3"}
	beforeConflicts := []string{"conflict wh1 N-g1 negative-stock", "conflict wh1 R4 oversell", "conflict wh2 - quarantined-op"}
	waitForState(t, 20*time.Second, "the first alerts and conflict notifications", func() bool {
		return contains(alertKeys(A), before...) && contains(notifiedConflicts(c.obs), beforeConflicts...)
	}, func() string { return fmt.Sprint(alertKeys(A), notifiedConflicts(c.obs)) })
	scan(g1, "CMD:RECEIVE", "LOC:BIN-1", "QTY:4", "SKU:R3", "CMD:DONE") // R3 3 → 7: its alert clears
	waitFor(t, 20*time.Second, "the reorder alert of wh1 R3 cleared", func() bool {
		as, err := alertsOf(A)
		require.NoError(t, err)
		for _, a := range as {
			if alertKey(a) == "reorder wh1 R3" && a["status"] == "cleared" {
				return true
			}
		}
		return false
	})
	// Nothing of these in flight when the leader dies: published on the
	// alerts topic and delivered (the webhook queue is durable anyway; the
	// raise and the enqueue are two transactions — see the report).
	waitFor(t, 20*time.Second, "the first alerts, conflicts and order events published and delivered", func() bool {
		n := len(before) + 1 + len(beforeConflicts) // R3 cleared
		return len(c.obs.alertMsgs()) >= n && len(rcv.received("events", "alert"))+len(rcv.received("events", "conflict")) >= n &&
			len(rcv.received("events", "order")) >= 4
	})

	// ---- 4. kill -9 the leader mid-stream ----
	half, killed := make(chan struct{}), make(chan struct{})
	streamErrs := make(chan error, 4)
	fill := func(sku string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "SKU:" + sku
		}
		return out
	}
	paced := func(g *gateway, lines []string) error { // the operator's pace, not a wait for a result
		for _, l := range lines {
			if err := g.scan(l); err != nil {
				return err
			}
			time.Sleep(40 * time.Millisecond)
		}
		return nil
	}
	var streams sync.WaitGroup
	streams.Add(2)
	go func() {
		defer streams.Done()
		err := paced(g2, append(append([]string{"CMD:RECEIVE", "LOC:BIN-2"}, fill("F1", 20)...), "CMD:DONE"))
		close(half)
		<-killed
		if err == nil { // right after the kill, while leadership moves
			err = g2.scan("CMD:PICK", "LOC:BIN-2", "QTY:6", "SKU:R2", "CMD:DONE") // wh1 R2 10 → 4: crossing
		}
		if err == nil {
			err = paced(g2, append(append([]string{"CMD:RECEIVE", "LOC:BIN-2"}, fill("F1", 20)...), "CMD:DONE"))
		}
		if err == nil {
			err = g2.scan("CMD:ADJUST", "LOC:NEG", "QTY:-1", "SKU:N-g2", "CMD:DONE")
		}
		streamErrs <- err
	}()
	go func() {
		defer streams.Done()
		err := paced(g3, append(append([]string{"CMD:RECEIVE", "LOC:BIN-1"}, fill("F2", 40)...), "CMD:DONE"))
		<-killed
		if err == nil {
			err = g3.scan("CMD:PICK", "LOC:BIN-1", "QTY:4", "SKU:R1", "CMD:DONE", // wh2 R1 6 → 2: crossing
				"CMD:ADJUST", "LOC:NEG", "QTY:-1", "SKU:N-g3", "CMD:DONE")
		}
		streamErrs <- err
	}()
	select {
	case <-half:
	case <-time.After(time.Minute):
		t.Fatal("g2 did not scan its first half")
	}
	ls := c.leaders()
	require.Equal(t, []*replica{leader0}, ls, "one leader before the kill, the first one")
	victim := ls[0]
	for _, ep := range []string{evID, avID} {
		require.Equal(t, victim, leaseHolder(ep), "the leader holds the delivery lease of endpoint %s", ep)
	}
	var survivors []*replica
	for _, r := range c.replicas {
		if r != victim {
			survivors = append(survivors, r)
		}
	}
	s1, s2 := survivors[0], survivors[1]
	t.Logf("kill -9 the leader, replica %d, while g2 and g3 scan", victim.i)
	killAt := time.Now()
	victim.proc().Stop(syscall.SIGKILL)
	close(killed)
	// orders pour in through the survivors while leadership moves
	burstDone := make(chan error, 1)
	var burst2 []orderBody
	go func() {
		var err error
		burst2, err = burst("b2-", 20, survivors)
		burstDone <- err
	}()
	var newLeader *replica
	waitFor(t, 10*time.Second, "another replica reports shelfsync_replica_leader 1", func() bool {
		ls := c.leaders()
		if len(ls) == 1 && ls[0] != victim {
			newLeader = ls[0]
			return true
		}
		return false
	})
	takeover := time.Since(killAt)
	t.Logf("replica %d leads %s after the kill", newLeader.i, takeover.Round(time.Millisecond))

	require.NoError(t, <-burstDone)
	addBurst(burst2)
	// orders while the victim is down: through both survivors
	o5 := create(s1, "1005", "wh1", map[string]int64{"R2": 3})
	event("created", o5.ID)
	replay(s2, "1005", "wh1", map[string]int64{"R2": 3}, o5)
	o6 := create(s1, "1006", "wh1", map[string]int64{"R1": 1})
	event("created", o6.ID)
	closeOrder(s2, o6, "ship", "shipped")
	event("shipped", o6.ID)
	closeOrder(s1, o1, "ship", "shipped") // created through A
	event("shipped", o1.ID)
	closeOrder(s2, o4, "cancel", "cancelled") // created through B; the oversell clears
	event("cancelled", o4.ID)

	streams.Wait()
	for range 2 {
		require.NoError(t, <-streamErrs)
	}

	// ---- 5. the victim comes back ----
	victim.start()
	require.Equal(t, []*replica{newLeader}, c.leaders(), "the leader stays; the restarted replica is passive")
	o7 := create(victim, "1007", "wh1", map[string]int64{"R3": 1})
	event("created", o7.ID)
	replay(victim, "1001", "wh1", map[string]int64{"R1": 2}, o1)
	closeOrder(victim, o2, "cancel", "cancelled") // created through B or C
	event("cancelled", o2.ID)
	for i, o := range bursts { // every other burst order cancelled, through all three replicas
		if i%2 == 0 {
			closeOrder(c.replicas[i%3], o, "cancel", "cancelled")
			event("cancelled", o.ID)
		}
	}
	scan(g1, "CMD:PICK", "LOC:BIN-1", "QTY:5", "SKU:R3", "CMD:DONE") // wh1 R3 7 → 2: the second crossing
	c.settle(time.Minute)

	// ---- checks ----
	// the ledger
	ledger := map[string]map[string]int64{}
	for _, g := range c.gateways {
		eff, _ := scanLedger(g.Scanned(), defined[g.wh])
		if ledger[g.wh] == nil {
			ledger[g.wh] = map[string]int64{}
		}
		for k, d := range eff {
			ledger[g.wh][k] += d
		}
	}
	require.Equal(t, map[string]int64{"BIN-1/R1": 3, "BIN-1/R3": 2, "BIN-2/R2": 4, "BIN-2/R4": 2, "BIN-2/F1": 40, "BIN-1/B1": 100, "NEG/N-g1": -1, "NEG/N-g2": -1}, ledger["wh1"])
	require.Equal(t, map[string]int64{"BIN-1/R1": 2, "BIN-1/F2": 40, "NEG/N-g3": -1}, ledger["wh2"])
	for _, r := range c.replicas {
		for wh, want := range ledger {
			got, err := r.stock(wh)
			require.NoError(t, err)
			for k, v := range got {
				if v == 0 {
					delete(got, k)
				}
			}
			require.Equal(t, want, got, "replica %d, %s: the ledger of the confirmed scans", r.i, wh)
		}
	}

	// alerts: listed alike by every replica, one per crossing; conflicts
	// are not alert items
	wantAlerts := []string{
		"reorder wh1 R1", "reorder wh1 R2", "reorder wh1 R3", "reorder wh1 R3", "reorder wh2 R1",
	}
	sort.Strings(wantAlerts)
	waitForState(t, 30*time.Second, "every alert raised", func() bool { return contains(alertKeys(newLeader), wantAlerts...) },
		func() string { return fmt.Sprint(alertKeys(newLeader)) })
	ackable, err := alertsOf(newLeader)
	require.NoError(t, err)
	var acked string
	for _, a := range ackable {
		if alertKey(a) == "reorder wh1 R1" {
			acked = a["id"].(string)
		}
	}
	require.NotEmpty(t, acked)
	s1.must(t, "POST", "/api/v1/alerts/"+acked+"/ack", map[string]any{"by": "ana", "note": "ordered"}, nil)
	code, _ := victim.call("POST", "/api/v1/alerts/"+acked+"/ack", map[string]any{"by": "bob"}, nil)
	require.Equal(t, http.StatusConflict, code, "acknowledged through another replica already")

	var list []map[string]any
	for _, r := range c.replicas {
		got, err := alertsOf(r)
		require.NoError(t, err)
		require.Equal(t, wantAlerts, alertKeys(r), "replica %d: one alert per crossing", r.i)
		if list == nil {
			list = got
		}
		require.Equal(t, list, got, "replica %d lists the alerts as replica %d does", r.i, c.replicas[0].i)
	}
	wantPub := map[string]bool{}
	for _, a := range list {
		wantPub["alert "+a["id"].(string)+" open"] = true
		if a["status"] != "open" {
			wantPub["alert "+a["id"].(string)+" "+a["status"].(string)] = true
		}
	}
	require.Len(t, wantPub, len(wantAlerts)+2, "the alerts' openings, R1's acknowledgement, the first R3's clearing")
	// ... and the conflicts' notifications: every conflict opened once; the
	// oversell ended when the stock came back
	var confs struct {
		Items []struct{ ID, Kind, Status string }
	}
	newLeader.must(t, "GET", "/api/v1/conflicts?limit=100", nil, &confs)
	for _, x := range confs.Items {
		wantPub["conflict.opened "+x.ID] = true
		if x.Status == "cleared" {
			wantPub["conflict.ended "+x.ID] = true
		}
	}
	require.Len(t, wantPub, len(wantAlerts)+2+5+1)

	// ... published once on the alerts topic
	mqttCount := func() map[string]int {
		n := map[string]int{}
		for _, m := range c.obs.alertMsgs() {
			if m.Kind == "conflict" {
				n["conflict."+m.Status+" "+m.Conflict]++
				continue
			}
			n["alert "+m.ID+" "+m.Status]++
		}
		return n
	}
	waitFor(t, 20*time.Second, "every alert change and conflict notification on the alerts topic", func() bool {
		n := mqttCount()
		for k := range wantPub {
			if n[k] == 0 {
				return false
			}
		}
		return true
	})
	for k, n := range mqttCount() {
		require.True(t, wantPub[k], "%s published on the alerts topic but not listed by the API", k)
		require.Equal(t, 1, n, "%s published %d times on the alerts topic", k, n)
	}

	// ... and each alert and order event delivered to the webhook receiver
	// once: one delivery per event; a delivery posted again (same
	// X-Shelfsync-Delivery) is the retry of an attempt the kill cut short
	wantHooks := map[string]bool{}
	for k := range wantPub {
		wantHooks[k] = true
	}
	for _, e := range orderEvents {
		wantHooks[e] = true
	}
	var ev hookTally
	waitFor(t, 60*time.Second, "every alert and order event at the webhook receiver", func() bool {
		ev = rcv.tally("events", killAt)
		for k := range wantHooks {
			if len(ev.byKey[k]) == 0 {
				return false
			}
		}
		return true
	})
	for k, ds := range ev.byKey {
		require.True(t, wantHooks[k], "unexpected webhook %s", k)
		require.Len(t, ds, 1, "%s queued as %d deliveries %v: an event must be queued once", k, len(ds), ds)
	}
	require.Len(t, ev.byKey, len(wantHooks))
	require.Len(t, orderEvents, 11+40+20)

	// orders: every replica's GET agrees with the book
	for id, w := range book {
		var first map[string]any
		for _, r := range c.replicas {
			var got map[string]any
			r.must(t, "GET", "/api/v1/orders/"+w.wh+"/"+id, nil, &got)
			require.Equal(t, w.status, got["status"], "replica %d, order %s", r.i, id)
			if first == nil {
				first = got
			}
			require.Equal(t, first, got, "replica %d's order %s as replica %d's", r.i, id, c.replicas[0].i)
		}
	}
	var orderLists [][]any
	for _, r := range c.replicas {
		var ol struct{ Items []any }
		r.must(t, "GET", "/api/v1/orders?limit=1000", nil, &ol)
		require.Len(t, ol.Items, len(book))
		orderLists = append(orderLists, ol.Items)
	}
	require.Equal(t, orderLists[0], orderLists[1])
	require.Equal(t, orderLists[0], orderLists[2])

	// availability: the ledger and the open orders, on every replica …
	wantATS := expectATS(ledger, sellable, book)
	var maxSeq uint64
	for _, o := range book {
		maxSeq = max(maxSeq, o.seq)
	}
	var lastATS []atsRow
	waitFor(t, 20*time.Second, "every replica's availability", func() bool {
		for _, r := range c.replicas {
			var av struct{ Items []atsRow }
			if _, err := r.call("GET", "/api/v1/availability", nil, &av); err != nil {
				return false
			}
			sortATS(av.Items)
			lastATS = av.Items
			if fmt.Sprint(av.Items) != fmt.Sprint(wantATS) {
				return false
			}
		}
		return true
	})
	require.Equal(t, wantATS, lastATS)
	// … as last published on the topic, retained, and at the webhook
	topics := protocol.NewTopics("")
	var mqttAvail int
	for _, ch := range channels {
		want := ch.offer(wantATS)
		waitFor(t, 20*time.Second, "the last availability of "+ch.name+" on MQTT", func() bool {
			b, _ := c.obs.lastAvailability(ch.name)
			if b == nil {
				return false
			}
			s, got, err := decodeSnapshot(b)
			return err == nil && s.Seq >= maxSeq && fmt.Sprint(got) == fmt.Sprint(want)
		})
		_, n := c.obs.lastAvailability(ch.name)
		mqttAvail += n
		b := retained(t, c.mqtt, topics.Availability(ch.name), 10*time.Second)
		require.NotNil(t, b, "retained availability of %s", ch.name)
		s, got, err := decodeSnapshot(b)
		require.NoError(t, err)
		require.Equal(t, want, got, "retained availability of %s", ch.name)
		require.GreaterOrEqual(t, s.Seq, maxSeq)
	}
	// the reservation sequence of what is published never goes back, not
	// even when another replica takes over publishing
	for _, ch := range channels {
		var prev uint64
		for i, b := range c.obs.availability(ch.name) {
			s, _, err := decodeSnapshot(b)
			require.NoError(t, err)
			require.GreaterOrEqual(t, s.Seq, prev, "availability message %d of %s goes back from seq %d to %d", i, ch.name, prev, s.Seq)
			prev = s.Seq
		}
	}
	var prevSeq uint64
	for i, h := range rcv.received("avail", "availability") {
		s, _, err := decodeSnapshot(h.body)
		require.NoError(t, err)
		require.GreaterOrEqual(t, s.Seq, prevSeq, "availability webhook %d goes back from seq %d to %d", i, prevSeq, s.Seq)
		prevSeq = s.Seq
	}
	webWant := channels[0].offer(wantATS)
	require.Equal(t, map[string]int64{"B1": 80, "F1": 40, "F2": 40, "N-g1": 0, "N-g2": 0, "N-g3": 0, "R1": 4, "R2": 1, "R3": 1, "R4": 2}, webWant)
	require.Equal(t, map[string]int64{"B1": 40, "F1": 20, "F2": 0, "N-g1": 0, "N-g2": 0, "N-g3": 0, "R1": 1, "R2": 0, "R3": 0, "R4": 1}, channels[1].offer(wantATS))
	waitFor(t, 60*time.Second, "the last availability webhook", func() bool {
		hs := rcv.received("avail", "availability")
		if len(hs) == 0 {
			return false
		}
		s, got, err := decodeSnapshot(hs[len(hs)-1].body)
		return err == nil && s.Channel == "web" && s.Seq >= maxSeq && fmt.Sprint(got) == fmt.Sprint(webWant)
	})
	av := rcv.tally("avail", killAt)

	// conflicts behind the alerts
	for _, r := range c.replicas {
		var cs struct {
			Items []struct {
				ID, Kind, Status, SKU string
				Holds                 bool
			}
		}
		r.must(t, "GET", "/api/v1/conflicts?limit=100", nil, &cs)
		var kinds []string
		for _, x := range cs.Items {
			sku := x.SKU
			if sku == "" {
				sku = "-"
			}
			kinds = append(kinds, x.Kind+" "+sku+" "+x.Status)
		}
		sort.Strings(kinds)
		require.Equal(t, []string{"negative-stock N-g1 open", "negative-stock N-g2 open", "negative-stock N-g3 open", "oversell R4 cleared", "quarantined-op - open"}, kinds, "replica %d", r.i)
	}
	require.Zero(t, rcv.badSig, "every webhook signed")

	reposts := append(ev.reposts, av.reposts...)
	for _, x := range reposts {
		t.Logf("delivery posted again: endpoint %s, %s (%s), attempt %s, at kill%+v", x.endpoint, x.delivery, hookKey(x), x.attempt, x.at.Sub(killAt).Round(time.Millisecond))
	}
	// At most the one attempt per endpoint that the kill cut short.
	require.LessOrEqual(t, len(ev.reposts), 1, "alert/order deliveries posted again")
	require.LessOrEqual(t, len(av.reposts), 1, "availability deliveries posted again")
	for _, ep := range []string{evID, avID} {
		h := leaseHolder(ep)
		require.NotNil(t, h, "endpoint %s's lease is held", ep)
		t.Logf("endpoint %s: delivery lease now held by replica %d (run %d)", ep, h.i, h.srv.Runs())
	}
	stall := func(tl hookTally) string {
		if tl.firstAfter.IsZero() {
			return "-"
		}
		return tl.firstAfter.Sub(killAt).Round(time.Millisecond).String()
	}
	kinds := map[string]int{}
	for _, k := range wantAlerts {
		kinds[strings.Fields(k)[0]]++
	}
	t.Logf("summary: %d alerts (%d reorder, %d conflict, %d oversell) + 1 ack + 1 cleared, each listed by 3 replicas, published once on MQTT with 6 conflict notifications (%d messages); "+
		"%d order events (%d orders); webhook deliveries: %d to the events endpoint, %d to the availability endpoint (last seq %d), reposted after the kill %d/%d, queued twice 0; "+
		"%d availability messages on MQTT; leader %d → %d in %s; first webhook after the kill: events +%s, availability +%s; wall %s",
		len(wantAlerts), kinds["reorder"], kinds["conflict"], kinds["oversell"], len(c.obs.alertMsgs()),
		len(orderEvents), len(book), ev.hits, av.hits, maxSeq, len(ev.reposts), len(av.reposts),
		mqttAvail, victim.i, newLeader.i, takeover.Round(time.Millisecond), stall(ev), stall(av), time.Since(began).Round(time.Second))
}
