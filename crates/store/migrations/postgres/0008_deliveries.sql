-- Messages to other nodes (federation), written by a relay that follows a
-- stream, and sent by a worker that retries them with back-off. Messages
-- with one ordering_key (a referral) are sent one at a time, in id order:
-- one that is not yet delivered holds back every later one of its key.
-- A message is never deleted: a delivered one keeps delivered_at, and one
-- given up on is 'parked' until an operator puts it back.
CREATE TABLE deliveries (
    id              BIGSERIAL PRIMARY KEY,
    peer            TEXT   NOT NULL,
    message_id      TEXT   NOT NULL UNIQUE,
    ordering_key    TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    body            TEXT   NOT NULL,
    state           TEXT   NOT NULL, -- pending | parked | delivered
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      BIGINT NOT NULL, -- milliseconds since the epoch
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT
);
CREATE INDEX deliveries_due ON deliveries (peer, state, next_attempt_at);
CREATE INDEX deliveries_order ON deliveries (peer, ordering_key, id);

