-- A client registered to require mutual TLS: its access tokens are only
-- issued over a connection that presents a client certificate, and are
-- bound to that certificate (RFC 8705). 1 = required, 0 = not.
ALTER TABLE auth_clients ADD COLUMN require_certificate BIGINT NOT NULL DEFAULT 0;
