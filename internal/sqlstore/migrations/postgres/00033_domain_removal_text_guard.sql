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
-- is deleted only with its account (ON DELETE CASCADE from accounts, whose row is gone
-- by then), as the ledger that names it (migration 32). Whoever can drop these triggers
-- can still rewrite a text; reads and `tidings ledger verify` catch that by its SHA-256.
-- Deletes are checked once per statement over its deleted rows.
-- +goose StatementBegin
CREATE FUNCTION consent_texts_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent texts are append-only: a published text cannot be changed'
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION consent_texts_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM old_rows o JOIN accounts a ON a.id = o.account_id) THEN
        RAISE EXCEPTION 'consent texts are append-only: a text is deleted only with its account'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER consent_texts_append_only_update BEFORE UPDATE ON consent_texts FOR EACH ROW
WHEN (NEW.account_id IS DISTINCT FROM OLD.account_id OR NEW.version IS DISTINCT FROM OLD.version
    OR NEW.body IS DISTINCT FROM OLD.body OR NEW.sha256 IS DISTINCT FROM OLD.sha256
    OR NEW.created_at IS DISTINCT FROM OLD.created_at)
EXECUTE FUNCTION consent_texts_refuse_update();

CREATE TRIGGER consent_texts_append_only_delete AFTER DELETE ON consent_texts
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION consent_texts_refuse_delete();

-- +goose Down
DROP TRIGGER consent_texts_append_only_delete ON consent_texts;
DROP TRIGGER consent_texts_append_only_update ON consent_texts;
DROP FUNCTION consent_texts_refuse_delete();
DROP FUNCTION consent_texts_refuse_update();
DROP INDEX sending_domains_name;
DROP INDEX sending_domains_domain;
-- Removed domains go, with their keys, so that the index of migration 31 can be built.
DELETE FROM sending_domains WHERE removed_at IS NOT NULL;
CREATE UNIQUE INDEX sending_domains_domain ON sending_domains (domain);
ALTER TABLE sending_domains DROP COLUMN removed_at;
