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

-- A consent text is what people were shown: once published it cannot be changed, and it
-- is deleted only with its account (ON DELETE CASCADE from accounts, which deletes the
-- account row first), as the ledger that names it (migration 32). Whoever can drop these
-- triggers can still rewrite a text; reads and `tidings ledger verify` catch that by its
-- SHA-256.
-- +goose StatementBegin
CREATE TRIGGER consent_texts_append_only_update BEFORE UPDATE ON consent_texts
WHEN NEW.account_id IS NOT OLD.account_id OR NEW.version IS NOT OLD.version OR NEW.body IS NOT OLD.body
    OR NEW.sha256 IS NOT OLD.sha256 OR NEW.created_at IS NOT OLD.created_at
BEGIN
    SELECT RAISE(ABORT, 'consent texts are append-only: a published text cannot be changed');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER consent_texts_append_only_delete BEFORE DELETE ON consent_texts
WHEN EXISTS (SELECT 1 FROM accounts WHERE id = OLD.account_id)
BEGIN
    SELECT RAISE(ABORT, 'consent texts are append-only: a text is deleted only with its account');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER consent_texts_append_only_delete;
DROP TRIGGER consent_texts_append_only_update;
DROP INDEX sending_domains_name;
DROP INDEX sending_domains_domain;
-- Removed domains go, with their keys, so that the index of migration 31 can be built.
DELETE FROM sending_domains WHERE removed_at IS NOT NULL;
CREATE UNIQUE INDEX sending_domains_domain ON sending_domains (domain);
ALTER TABLE sending_domains DROP COLUMN removed_at;
