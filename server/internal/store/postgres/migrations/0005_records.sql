-- 0005: the records the server's other packages keep beside the ledger
-- (master data, pick routing, orders and channels, alerts, webhooks), as
-- the ordered key-value space store.KV: keys are byte strings under a
-- package prefix ("md/", "or/", "al/", "wh/", …) and compare byte-wise,
-- exactly as in the Badger store, so both backends list them alike.
CREATE TABLE kv (
    k bytea PRIMARY KEY,
    v bytea NOT NULL
);
