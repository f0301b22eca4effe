-- 0003: gateway leases, for replicas that partition the gateways between
-- them (shelfsync-server run --gateway-leases; deploy/SCALE-OUT.md).

-- replicas: each live replica's heartbeat.
CREATE TABLE replicas (
    id         text COLLATE "C" PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

-- gateway_leases: the replica that handles a gateway's messages and sends
-- its downstream, until expires_at (renewed while the replica lives).
CREATE TABLE gateway_leases (
    wh         text COLLATE "C" NOT NULL,
    gw         text COLLATE "C" NOT NULL,
    owner      text COLLATE "C" NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (wh, gw)
);
CREATE INDEX gateway_leases_by_owner ON gateway_leases (owner);
