-- This service's part of a transaction that spans services (the gateway
-- splits such a Bundle by owner). The part is written and visible at once;
-- `written` lists its writes as JSON [[type, id, version, outcome], …]
-- until the transaction is decided. A part of an aborted transaction is
-- purged and its row stays 'aborted', so that a late copy of it is refused.
CREATE TABLE transaction_parts (
    transaction_id  TEXT   NOT NULL PRIMARY KEY,
    state           TEXT   NOT NULL, -- tentative, committed or aborted
    written         TEXT,
    idempotency_key TEXT,
    created_ms      BIGINT NOT NULL
);

-- The decisions on those transactions, kept by the identity service: one
-- row per attempt. 'open' until the gateway commits it or it is presumed
-- aborted past its deadline; `settled` once every part has been told.
CREATE TABLE distributed_transactions (
    transaction_id TEXT   NOT NULL PRIMARY KEY,
    client_key     TEXT,
    request_hash   TEXT   NOT NULL,
    state          TEXT   NOT NULL, -- open, committed or aborted
    participants   TEXT   NOT NULL, -- the services with a part, comma-separated
    created_ms     BIGINT NOT NULL,
    decided_ms     BIGINT,
    settled        BIGINT NOT NULL
);
-- One live attempt per client idempotency key: a second one while the first
-- is open, or after it committed, finds it instead.
CREATE UNIQUE INDEX distributed_transactions_live_key
    ON distributed_transactions (client_key) WHERE state IN ('open', 'committed');
CREATE INDEX distributed_transactions_unsettled
    ON distributed_transactions (settled, state, created_ms);
