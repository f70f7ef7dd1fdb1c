-- A transaction's idempotency key replays every entry's result, not one:
-- `results` holds them as a JSON array of [resource_type, id, version, outcome].
ALTER TABLE idempotency_keys ADD COLUMN results TEXT;

-- Ordered logs of resources under a key (a consult channel is the log of
-- one Encounter's messages). `seq` counts 1, 2, 3, … per stream with no
-- gaps, because it is assigned inside the write's transaction.
CREATE TABLE stream_entries (
    stream        TEXT   NOT NULL,
    seq           BIGINT NOT NULL,
    resource_type TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    PRIMARY KEY (stream, seq)
);
CREATE INDEX stream_entries_resource ON stream_entries (resource_type, id);

-- Everything that refers to one resource, whatever its type (compartments,
-- Patient/$everything).
CREATE INDEX search_index_ref_any ON search_index (ref, param);
