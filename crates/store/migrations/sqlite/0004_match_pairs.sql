-- Blocking keys: the values under which a resource is found for matching
-- (see ResourceDef::keys), rewritten with every version in its write's
-- transaction. A table of their own, so that a lookup by key has one index
-- to use whatever the planner's statistics say.
CREATE TABLE match_keys (
    resource_type TEXT NOT NULL,
    match_key     TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    version       BIGINT NOT NULL, -- the resource's current version
    PRIMARY KEY (resource_type, match_key, resource_id)
);
CREATE INDEX match_keys_resource ON match_keys (resource_type, resource_id);

-- Pairs of resources that matching found alike (Patients in identity), and
-- what a person decided about them. low_id < high_id, so a pair has one
-- row whichever side found it. status is pending until a person decides
-- 'match' or 'not-match'; automatic matching never changes a decision.
CREATE TABLE match_pairs (
    resource_type TEXT NOT NULL,
    low_id        TEXT NOT NULL,
    high_id       TEXT NOT NULL,
    found_by      TEXT NOT NULL, -- the id whose write found the pair
    grade         TEXT,
    score         REAL,
    evidence      TEXT,
    status        TEXT NOT NULL,
    decided_by    TEXT,
    reason        TEXT,
    found_at      TEXT NOT NULL,
    decided_at    TEXT,
    PRIMARY KEY (resource_type, low_id, high_id)
);
CREATE INDEX match_pairs_status ON match_pairs (resource_type, status, found_at);
CREATE INDEX match_pairs_high ON match_pairs (resource_type, high_id);

-- How far a named reader of a stream has processed it, saved in the same
-- transaction as what it made of the entries.
CREATE TABLE stream_cursors (
    name TEXT   NOT NULL PRIMARY KEY,
    seq  BIGINT NOT NULL
);
