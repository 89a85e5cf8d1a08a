-- +goose Up
-- Evidence that many ledger entries share and that is about none of the people they
-- name: an import's declaration (its time, source and lawful basis), the same for each
-- of its rows. It is stored once, in the clear, under its SHA-256, which each entry
-- records as its evidence_sha256 with no sealed copy of its own (evidence_sealed NULL).
-- Erasing a person leaves it. Append-only, as the ledger that names it (migration 32):
-- never changed, deleted only with its account.
CREATE TABLE shared_evidence (
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    sha256     BLOB   NOT NULL,
    body       BLOB   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, sha256)
);

-- +goose StatementBegin
CREATE TRIGGER shared_evidence_append_only_update BEFORE UPDATE ON shared_evidence
BEGIN
    SELECT RAISE(ABORT, 'shared evidence is append-only: it cannot be changed');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER shared_evidence_append_only_delete BEFORE DELETE ON shared_evidence
WHEN EXISTS (SELECT 1 FROM accounts WHERE id = OLD.account_id)
BEGIN
    SELECT RAISE(ABORT, 'shared evidence is append-only: it is deleted only with its account');
END;
-- +goose StatementEnd

-- +goose Down
-- Imported entries keep their digest, but their evidence can no longer be read.
DROP TABLE shared_evidence;
