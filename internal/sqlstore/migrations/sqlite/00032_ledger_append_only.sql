-- +goose Up
-- The consent ledger is append-only, and the database says so: an entry's fields cannot
-- be updated, except that its sealed evidence is erased (set to NULL) with the person,
-- and an entry is deleted only with its account (ON DELETE CASCADE from accounts, which
-- deletes the account row first). The chain's head never moves back and is deleted only
-- with its account too. Whoever can drop these triggers can still rewrite the ledger;
-- `tidings ledger verify` catches that by the hash chain.
-- +goose StatementBegin
CREATE TRIGGER ledger_append_only_update BEFORE UPDATE ON ledger
WHEN NEW.account_id IS NOT OLD.account_id OR NEW.seq IS NOT OLD.seq OR NEW.created_at IS NOT OLD.created_at
    OR NEW.kind IS NOT OLD.kind OR NEW.person_id IS NOT OLD.person_id OR NEW.list_id IS NOT OLD.list_id
    OR NEW.source IS NOT OLD.source OR NEW.text_version IS NOT OLD.text_version OR NEW.text_sha256 IS NOT OLD.text_sha256
    OR NEW.evidence_sha256 IS NOT OLD.evidence_sha256 OR NEW.prev_hash IS NOT OLD.prev_hash OR NEW.hash IS NOT OLD.hash
    OR (NEW.evidence_sealed IS NOT NULL AND NEW.evidence_sealed IS NOT OLD.evidence_sealed)
BEGIN
    SELECT RAISE(ABORT, 'the consent ledger is append-only: an entry cannot be changed, only its sealed evidence erased');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER ledger_append_only_delete BEFORE DELETE ON ledger
WHEN EXISTS (SELECT 1 FROM accounts WHERE id = OLD.account_id)
BEGIN
    SELECT RAISE(ABORT, 'the consent ledger is append-only: entries are deleted only with their account');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER ledger_heads_forward_only BEFORE UPDATE ON ledger_heads
WHEN NEW.account_id IS NOT OLD.account_id OR NEW.seq < OLD.seq
BEGIN
    SELECT RAISE(ABORT, 'the consent ledger is append-only: its head cannot move back');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER ledger_heads_append_only_delete BEFORE DELETE ON ledger_heads
WHEN EXISTS (SELECT 1 FROM accounts WHERE id = OLD.account_id)
BEGIN
    SELECT RAISE(ABORT, 'the consent ledger is append-only: its head is deleted only with its account');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER ledger_heads_append_only_delete;
DROP TRIGGER ledger_heads_forward_only;
DROP TRIGGER ledger_append_only_delete;
DROP TRIGGER ledger_append_only_update;
