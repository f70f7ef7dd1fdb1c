-- A stream entry names one version of its resource, so that a stream of
-- changes (every version of every referral) shows each change as it was.
-- Entries written before this column existed name version 1 (they were
-- creates).
ALTER TABLE stream_entries ADD COLUMN version BIGINT;
