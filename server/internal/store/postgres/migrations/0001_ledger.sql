-- 0001: the ledger, the op log, the downstream log and the gateway records.
--
-- Every identifier column uses the "C" collation: the merge order breaks
-- HLC ties by comparing gateway IDs byte-wise (ledger.Order.Compare), and
-- listings sort like the Badger store's keys. Unsigned 64-bit values of the
-- protocol (seq, HLC) are stored as bigint; both stay below 2^63 for
-- thousands of years.

-- meta holds the store's epoch.
CREATE TABLE meta (
    key   text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);

-- warehouses: one row per warehouse. ApplyBatch locks it (after the
-- gateway's watermark row), so the merges of one warehouse are serial
-- across replicas; down_head is the head of the warehouse's downstream log.
CREATE TABLE warehouses (
    wh        text COLLATE "C" PRIMARY KEY,
    down_head bigint NOT NULL DEFAULT 0
);

-- watermarks: per gateway the highest seq applied. Its row lock is what
-- makes a gateway's batches apply exactly once and in order whichever
-- replica receives them.
CREATE TABLE watermarks (
    wh         text COLLATE "C" NOT NULL,
    gw         text COLLATE "C" NOT NULL,
    wm         bigint NOT NULL DEFAULT 0,
    applied_at timestamptz,
    PRIMARY KEY (wh, gw)
);

-- ops: every applied op (CBOR of protocol.Op), for audit.
CREATE TABLE ops (
    wh         text COLLATE "C" NOT NULL,
    gw         text COLLATE "C" NOT NULL,
    seq        bigint NOT NULL,
    hlc        bigint NOT NULL,
    kind       smallint NOT NULL,
    body       bytea NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (wh, gw, seq)
);

-- quarantine: ops kept aside, not applied, with the reason; status is ''
-- until someone re-applies ("reapplied") or rejects ("rejected") the op.
CREATE TABLE quarantine (
    wh     text COLLATE "C" NOT NULL,
    gw     text COLLATE "C" NOT NULL,
    seq    bigint NOT NULL,
    reason text NOT NULL,
    body   bytea NOT NULL,
    status text NOT NULL DEFAULT '',
    decided_by text NOT NULL DEFAULT '',
    at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (wh, gw, seq)
);

-- stock_keys: ledger.KeyState per stock key; on_hand = count_qty + sum.
CREATE TABLE stock_keys (
    wh        text COLLATE "C" NOT NULL,
    loc       text COLLATE "C" NOT NULL,
    sku       text COLLATE "C" NOT NULL,
    lot       text COLLATE "C" NOT NULL DEFAULT '',
    count_hlc bigint NOT NULL DEFAULT 0,
    count_gw  text COLLATE "C" NOT NULL DEFAULT '',
    count_seq bigint NOT NULL DEFAULT 0,
    count_qty bigint NOT NULL DEFAULT 0,
    sum       bigint NOT NULL DEFAULT 0,
    on_hand   bigint GENERATED ALWAYS AS (count_qty + sum) STORED,
    PRIMARY KEY (wh, loc, sku, lot)
);
CREATE INDEX stock_keys_by_sku ON stock_keys (wh, sku);

-- loc_counts: the highest-ordered location-scope count per location.
CREATE TABLE loc_counts (
    wh  text COLLATE "C" NOT NULL,
    loc text COLLATE "C" NOT NULL,
    hlc bigint NOT NULL,
    gw  text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (wh, loc)
);

-- deltas: every delta on a key, indexed by key then merge order.
CREATE TABLE deltas (
    wh  text COLLATE "C" NOT NULL,
    loc text COLLATE "C" NOT NULL,
    sku text COLLATE "C" NOT NULL,
    lot text COLLATE "C" NOT NULL,
    hlc bigint NOT NULL,
    gw  text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    qty bigint NOT NULL,
    PRIMARY KEY (wh, loc, sku, lot, hlc, gw, seq)
);

-- down_log: each warehouse's downstream log, compacted to the latest entry
-- per (kind, item_key). target '' is for every gateway of the warehouse.
CREATE TABLE down_log (
    wh       text COLLATE "C" NOT NULL,
    seq      bigint NOT NULL,
    kind     smallint NOT NULL,
    item_key bytea NOT NULL,
    target   text COLLATE "C" NOT NULL DEFAULT '',
    body     bytea NOT NULL,
    PRIMARY KEY (wh, seq),
    UNIQUE (wh, kind, item_key)
);

-- gateways: the server's record of each gateway (store.Gateway).
CREATE TABLE gateways (
    wh              text COLLATE "C" NOT NULL,
    gw              text COLLATE "C" NOT NULL,
    online          boolean NOT NULL DEFAULT false,
    last_seen_ms    bigint NOT NULL DEFAULT 0,
    reported_seq    bigint NOT NULL DEFAULT 0,
    outbox_depth    bigint NOT NULL DEFAULT 0,
    agent_version   text NOT NULL DEFAULT '',
    protocol        integer NOT NULL DEFAULT 0,
    down_acked      bigint NOT NULL DEFAULT 0,
    last_applied_ms bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (wh, gw)
);
