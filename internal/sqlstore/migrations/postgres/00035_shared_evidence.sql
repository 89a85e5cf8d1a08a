-- +goose Up
-- Evidence that many ledger entries share and that is about none of the people they
-- name: an import's declaration (its time, source and lawful basis), the same for each
-- of its rows. It is stored once, in the clear, under its SHA-256, which each entry
-- records as its evidence_sha256 with no sealed copy of its own (evidence_sealed NULL).
-- Erasing a person leaves it. Append-only, as the ledger that names it (migration 32):
-- never changed, deleted only with its account (checked once per statement).
CREATE TABLE shared_evidence (
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    sha256     BYTEA  NOT NULL,
    body       BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, sha256)
);

-- +goose StatementBegin
CREATE FUNCTION shared_evidence_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'shared evidence is append-only: it cannot be changed'
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION shared_evidence_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM old_rows o JOIN accounts a ON a.id = o.account_id) THEN
        RAISE EXCEPTION 'shared evidence is append-only: it is deleted only with its account'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER shared_evidence_append_only_update BEFORE UPDATE ON shared_evidence FOR EACH ROW
EXECUTE FUNCTION shared_evidence_refuse_update();

CREATE TRIGGER shared_evidence_append_only_delete AFTER DELETE ON shared_evidence
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION shared_evidence_refuse_delete();

-- +goose Down
-- Imported entries keep their digest, but their evidence can no longer be read.
DROP TABLE shared_evidence;
DROP FUNCTION shared_evidence_refuse_delete();
DROP FUNCTION shared_evidence_refuse_update();
