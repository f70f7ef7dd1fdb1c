-- Partner systems registered to obtain access tokens (SMART Backend
-- Services), kept by the identity service: the organization each acts for,
-- its public keys (a JWKS, JSON) and the scopes it may be granted.
CREATE TABLE auth_clients (
    client_id     TEXT NOT NULL PRIMARY KEY,
    organization  TEXT NOT NULL, -- Organization/<id>
    jwks          TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    registered_by TEXT NOT NULL
);

-- Client assertions already used, until they expire: a jti is accepted
-- once, by whichever replica sees it first.
CREATE TABLE auth_assertions (
    client_id  TEXT   NOT NULL,
    jti        TEXT   NOT NULL,
    expires_at BIGINT NOT NULL, -- seconds since the epoch
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX auth_assertions_expiry ON auth_assertions (expires_at);
