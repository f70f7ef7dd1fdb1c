-- Blocking-key lookups read (resource_id, version) per key: a WITHOUT ROWID
-- table is stored in its primary key's order, so the lookup reads the key
-- index alone and no separate table rows.
CREATE TABLE match_keys_clustered (
    resource_type TEXT NOT NULL,
    match_key     TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    version       BIGINT NOT NULL, -- the resource's current version
    PRIMARY KEY (resource_type, match_key, resource_id)
) WITHOUT ROWID;
INSERT INTO match_keys_clustered (resource_type, match_key, resource_id, version)
    SELECT resource_type, match_key, resource_id, version FROM match_keys;
DROP TABLE match_keys;
ALTER TABLE match_keys_clustered RENAME TO match_keys;
CREATE INDEX match_keys_resource ON match_keys (resource_type, resource_id);
