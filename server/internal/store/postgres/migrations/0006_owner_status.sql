-- 0006: the stock key gains owner (the 3PL client the units belong to; ''
-- when the warehouse has no owners) and status (0 available, 1 hold,
-- 2 damaged, 3 expired; protocol.StockStatus). Existing rows become
-- owner '', status available: the same keys as before.
ALTER TABLE stock_keys ADD COLUMN owner text COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN status smallint NOT NULL DEFAULT 0;
ALTER TABLE stock_keys DROP CONSTRAINT stock_keys_pkey, ADD PRIMARY KEY (wh, loc, sku, lot, owner, status);

ALTER TABLE deltas ADD COLUMN owner text COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN status smallint NOT NULL DEFAULT 0;
ALTER TABLE deltas DROP CONSTRAINT deltas_pkey, ADD PRIMARY KEY (wh, loc, sku, lot, owner, status, hlc, gw, seq);

ALTER TABLE count_lines ADD COLUMN owner text COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN status smallint NOT NULL DEFAULT 0;
ALTER TABLE count_lines DROP CONSTRAINT count_lines_pkey, ADD PRIMARY KEY (wh, loc, sku, lot, owner, status, hlc, gw, seq);
