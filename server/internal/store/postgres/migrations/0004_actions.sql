-- 0004: the records behind store.Actions: customer orders and the tasks
-- sent to gateways. Server-origin ops need no table of their own: their
-- seq is the watermark row (wh, '@server') and they go to ops like any
-- other.

-- orders: customer orders (CBOR of store.Order). The ordered quantity of
-- each line is also in order_lines, which the conflict detector reads.
-- Order IDs come from scans and are kept as bytes, as in order_lines.
CREATE TABLE orders (
    wh   text COLLATE "C" NOT NULL,
    id   bytea NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (wh, id)
);

-- tasks: pick and count tasks of a warehouse (CBOR of protocol.Task); the
-- downstream log carries each to the gateways as item "task/<id>".
CREATE TABLE tasks (
    wh   text COLLATE "C" NOT NULL,
    id   text COLLATE "C" NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (wh, id)
);
