-- Blocking-key lookups read (resource_id, version) per key: with the version
-- in the key index they are index-only scans, and a Match over a registry
-- of a million reads no table rows for its candidates.
ALTER TABLE match_keys DROP CONSTRAINT match_keys_pkey;
ALTER TABLE match_keys ADD PRIMARY KEY (resource_type, match_key, resource_id) INCLUDE (version);
