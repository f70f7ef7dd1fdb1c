-- Same schema as migrations/sqlite, in PostgreSQL terms: BIGSERIAL for the
-- outbox sequence, and the byte-wise "C" collation on text_norm, so that a
-- string prefix is one index range (as with SQLite's default BINARY) and
-- _sort orders the same on both backends.

-- Current version of every resource; content is NULL for a deleted resource.
CREATE TABLE resources (
    resource_type   TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    version         BIGINT  NOT NULL,
    last_updated    TEXT    NOT NULL,
    last_updated_ms BIGINT  NOT NULL,
    deleted         BIGINT  NOT NULL, -- 0 or 1: sqlx's Any driver decodes no SQLite BOOLEAN
    content         TEXT,
    PRIMARY KEY (resource_type, id)
);

-- Every version ever written, tombstones included.
CREATE TABLE resource_versions (
    resource_type   TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    version         BIGINT  NOT NULL,
    last_updated    TEXT    NOT NULL,
    last_updated_ms BIGINT  NOT NULL,
    deleted         BIGINT  NOT NULL, -- 0 or 1: sqlx's Any driver decodes no SQLite BOOLEAN
    method          TEXT    NOT NULL,
    content         TEXT,
    PRIMARY KEY (resource_type, id, version)
);

-- Search-parameter values of current, non-deleted versions. One row per
-- value; the columns used depend on the parameter's kind.
CREATE TABLE search_index (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    param         TEXT NOT NULL,
    text_norm     TEXT COLLATE "C",
    text_exact    TEXT,
    token_system  TEXT,
    token_code    TEXT,
    date_lo       BIGINT,
    date_hi       BIGINT,
    ref           TEXT
);
CREATE INDEX search_index_resource ON search_index (resource_type, resource_id);
CREATE INDEX search_index_text ON search_index (resource_type, param, text_norm);
CREATE INDEX search_index_exact ON search_index (resource_type, param, text_exact);
CREATE INDEX search_index_token ON search_index (resource_type, param, token_code, token_system);
CREATE INDEX search_index_date ON search_index (resource_type, param, date_lo, date_hi);
CREATE INDEX search_index_ref ON search_index (resource_type, param, ref);

-- Client idempotency keys and the result of the write each one made.
CREATE TABLE idempotency_keys (
    idempotency_key TEXT   NOT NULL PRIMARY KEY,
    request_hash    TEXT   NOT NULL,
    resource_type   TEXT,
    id              TEXT,
    version         BIGINT,
    outcome         TEXT,
    created_at      TEXT   NOT NULL
);

-- What changed, in commit order, for live streams and delivery to others.
CREATE TABLE outbox (
    seq           BIGSERIAL PRIMARY KEY,
    resource_type TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    operation     TEXT   NOT NULL,
    recorded_at   TEXT   NOT NULL
);
