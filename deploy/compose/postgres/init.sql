-- Run once by the postgres image on an empty data volume
-- (/docker-entrypoint-initdb.d): one database per service, each owned by the
-- service's own role, so no service can read another's tables. Each service then
-- creates its own schema inside its database on first start.
-- Development passwords; a real deployment takes them from its secret store.
CREATE ROLE identity LOGIN PASSWORD 'identity';
CREATE DATABASE identity OWNER identity;
REVOKE ALL ON DATABASE identity FROM PUBLIC;

CREATE ROLE encounters LOGIN PASSWORD 'encounters';
CREATE DATABASE encounters OWNER encounters;
REVOKE ALL ON DATABASE encounters FROM PUBLIC;

CREATE ROLE referrals LOGIN PASSWORD 'referrals';
CREATE DATABASE referrals OWNER referrals;
REVOKE ALL ON DATABASE referrals FROM PUBLIC;
