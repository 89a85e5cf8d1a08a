-- +goose Up
-- A sending domain can be removed from its account, or moved by the operator to another
-- one. The row stays with its keys (retired): mail signed with them, such as stored
-- proof messages, must stay verifiable. The domain belongs to at most one account while
-- it is in use (the unique index now leaves removed rows out); an account keeps one row
-- per domain (UNIQUE (account_id, domain)), which is its own again if it adds the domain
-- once more.
ALTER TABLE sending_domains ADD COLUMN removed_at BIGINT;
DROP INDEX sending_domains_domain;
CREATE UNIQUE INDEX sending_domains_domain ON sending_domains (domain) WHERE removed_at IS NULL;
-- Every row of a domain, removed ones too: a selector is checked against all the keys
-- the domain ever had on the instance.
CREATE INDEX sending_domains_name ON sending_domains (domain);

-- +goose Down
DROP INDEX sending_domains_name;
DROP INDEX sending_domains_domain;
-- Removed domains go, with their keys, so that the index of migration 31 can be built.
DELETE FROM sending_domains WHERE removed_at IS NOT NULL;
CREATE UNIQUE INDEX sending_domains_domain ON sending_domains (domain);
ALTER TABLE sending_domains DROP COLUMN removed_at;
