-- 0002: conflict detection (package conflicts): the conflicts themselves
-- and the indexes the detector reads beside the ledger.

-- conflicts: body is the JSON of conflicts.Conflict; the other columns are
-- copies for filtering.
CREATE TABLE conflicts (
    id       text COLLATE "C" PRIMARY KEY,
    wh       text COLLATE "C" NOT NULL,
    kind     text COLLATE "C" NOT NULL,
    status   text COLLATE "C" NOT NULL,
    location text COLLATE "C" NOT NULL DEFAULT '',
    sku      text COLLATE "C" NOT NULL DEFAULT '',
    body     bytea NOT NULL
);
CREATE INDEX conflicts_by_wh ON conflicts (wh, status, kind);

-- count_lines: the quantity each count op counted for a key.
CREATE TABLE count_lines (
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

-- loc_count_log: every location-scope count (loc_counts keeps the latest).
CREATE TABLE loc_count_log (
    wh  text COLLATE "C" NOT NULL,
    loc text COLLATE "C" NOT NULL,
    hlc bigint NOT NULL,
    gw  text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (wh, loc, hlc, gw, seq)
);

-- order_lines: ordered quantity of customer order lines, when known.
-- Order IDs come from scans and are kept as bytes.
CREATE TABLE order_lines (
    wh   text COLLATE "C" NOT NULL,
    ord  bytea NOT NULL,
    line bigint NOT NULL,
    qty  bigint NOT NULL,
    PRIMARY KEY (wh, ord, line)
);

-- line_picks: each pick against an order line, and the line's total.
CREATE TABLE line_picks (
    wh     text COLLATE "C" NOT NULL,
    ord    bytea NOT NULL,
    line   bigint NOT NULL,
    hlc    bigint NOT NULL,
    gw     text COLLATE "C" NOT NULL,
    seq    bigint NOT NULL,
    ref_wh text COLLATE "C" NOT NULL,
    qty    bigint NOT NULL,
    PRIMARY KEY (wh, ord, line, hlc, gw, seq)
);
CREATE TABLE line_totals (
    wh     text COLLATE "C" NOT NULL,
    ord    bytea NOT NULL,
    line   bigint NOT NULL,
    picked bigint NOT NULL,
    PRIMARY KEY (wh, ord, line)
);

-- settings: per-warehouse options that change how ops are judged.
CREATE TABLE settings (
    wh             text COLLATE "C" PRIMARY KEY,
    skew_window_ms bigint NOT NULL DEFAULT 0,
    strict_catalog boolean NOT NULL DEFAULT false
);
