package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// AppendDown implements store.Store: the item takes the next seq of wh's
// log and replaces the older entry of the same kind and item key, in one
// statement.
func (s *Store) AppendDown(ctx context.Context, wh, target string, kind protocol.DownKind, itemKey string, body any) error {
	raw, err := protocol.Marshal(body)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `WITH h AS (
			INSERT INTO warehouses AS w (wh, down_head) VALUES ($1, 1)
			ON CONFLICT (wh) DO UPDATE SET down_head = w.down_head + 1
			RETURNING down_head)
		INSERT INTO down_log (wh, seq, kind, item_key, target, body)
		SELECT $1, h.down_head, $2, $3, $4, $5 FROM h
		ON CONFLICT (wh, kind, item_key) DO UPDATE SET seq = excluded.seq, target = excluded.target, body = excluded.body`,
		wh, int16(kind), []byte(itemKey), target, raw)
	return wrap(err, "append to downstream log of %s", wh)
}

// DownFrom implements store.Store. Head, the gateway's watermark and the
// entries come from one statement, so from one snapshot, in one round trip
// (a sender asks for every gateway it serves at each change of the log,
// and most answers are empty). Entries for other gateways are skipped but
// covered: Last is the seq before the first matching entry that did not
// fit, or the head.
func (s *Store) DownFrom(ctx context.Context, wh, gw string, after uint64, max int) (store.DownRead, error) {
	r := store.DownRead{First: after + 1}
	var head, wm int64
	var more bool
	rows, err := s.pool.Query(ctx, `WITH h AS (SELECT coalesce((SELECT down_head FROM warehouses WHERE wh = $1), 0) AS head,
			coalesce((SELECT wm FROM watermarks WHERE wh = $1 AND gw = $2), 0) AS wm)
		SELECT h.head, h.wm, d.seq, d.kind, d.body FROM h LEFT JOIN LATERAL (
			SELECT seq, kind, body FROM down_log WHERE wh = $1 AND seq > $3 AND (target = '' OR target = $2)
			ORDER BY seq LIMIT $4) d ON true
		ORDER BY d.seq`, wh, gw, int64(after), max+1)
	if err != nil {
		return r, wrap(err, "read downstream log of %s", wh)
	}
	for rows.Next() {
		var seq *int64
		var kind *int16
		var body []byte
		if err := rows.Scan(&head, &wm, &seq, &kind, &body); err != nil {
			rows.Close()
			return r, wrap(err, "read downstream log of %s", wh)
		}
		if seq == nil || more {
			continue // no entry; or beyond the one that did not fit
		}
		if len(r.Items) >= max {
			more, r.Last = true, uint64(*seq)-1
			continue
		}
		r.Items = append(r.Items, protocol.DownItem{Seq: uint64(*seq), Kind: protocol.DownKind(*kind), Body: body})
	}
	if err := rows.Err(); err != nil {
		return r, wrap(err, "read downstream log of %s", wh)
	}
	r.Head, r.UpWM = uint64(head), uint64(wm)
	switch {
	case after >= r.Head:
		r.Items, r.Last = nil, after
	case !more:
		r.Last = r.Head
	}
	if r.Last < r.Head {
		r.UpWM = 0 // only a read that reaches the head may move the agent's rebase point
	}
	return r, nil
}

// UpdateGateway implements store.Store: the row is locked while f runs.
func (s *Store) UpdateGateway(ctx context.Context, wh, gw string, f func(*store.Gateway)) error {
	g := store.Gateway{Warehouse: wh, Gateway: gw}
	var b pgx.Batch
	b.BeginTx(pgx.TxOptions{})
	b.Queue(`INSERT INTO gateways (wh, gw) VALUES ($1, $2) ON CONFLICT DO NOTHING`, wh, gw)
	b.Queue(`SELECT `+gatewayCols+` FROM gateways g WHERE g.wh = $1 AND g.gw = $2 FOR UPDATE OF g`, wh, gw).QueryRow(func(row pgx.Row) error {
		return scanGateway(row, &g)
	})
	tx, err := s.sendTx(ctx, &b)
	if err != nil {
		return wrap(err, "update gateway %s/%s", wh, gw)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit
	f(&g)
	_, err = tx.Exec(ctx, `UPDATE gateways SET online = $3, last_seen_ms = $4, reported_seq = $5, outbox_depth = $6,
		agent_version = $7, protocol = $8, down_acked = $9, last_applied_ms = $10 WHERE wh = $1 AND gw = $2`,
		wh, gw, g.Online, g.LastSeen, int64(g.ReportedSeq), int64(g.OutboxDepth), g.AgentVersion, int64(g.Protocol), int64(g.DownAcked), g.LastApplied)
	if err == nil {
		err = tx.Commit(ctx)
	}
	return wrap(err, "update gateway %s/%s", wh, gw)
}

const gatewayCols = `g.wh, g.gw, online, last_seen_ms, reported_seq, outbox_depth, agent_version, protocol, down_acked, last_applied_ms,
	coalesce((SELECT wm FROM watermarks w WHERE w.wh = g.wh AND w.gw = g.gw), 0)`

func scanGateway(row pgx.Row, g *store.Gateway) error {
	var reported, depth, proto, acked, wm int64
	if err := row.Scan(&g.Warehouse, &g.Gateway, &g.Online, &g.LastSeen, &reported, &depth, &g.AgentVersion, &proto, &acked, &g.LastApplied, &wm); err != nil {
		return err
	}
	g.ReportedSeq, g.OutboxDepth, g.Protocol, g.DownAcked, g.WM = uint64(reported), uint64(depth), uint(proto), uint64(acked), uint64(wm)
	return nil
}

// Gateways implements store.Store.
func (s *Store) Gateways(ctx context.Context, wh string) ([]store.Gateway, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+gatewayCols+` FROM gateways g WHERE $1 = '' OR g.wh = $1 ORDER BY g.wh, g.gw`, wh)
	if err != nil {
		return nil, wrap(err, "gateways")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Gateway, error) {
		var g store.Gateway
		return g, scanGateway(r, &g)
	})
	return out, wrap(err, "gateways")
}
