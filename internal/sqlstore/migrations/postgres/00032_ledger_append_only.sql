-- +goose Up
-- The consent ledger is append-only, and the database says so: an entry's fields cannot
-- be updated, except that its sealed evidence is erased (set to NULL) with the person,
-- and an entry is deleted only with its account (ON DELETE CASCADE from accounts, whose
-- row is gone by then). The chain's head never moves back and is deleted only with its
-- account too. Whoever can drop these triggers can still rewrite the ledger;
-- `tidings ledger verify` catches that by the hash chain.
--
-- Updates are checked by the triggers' WHEN clauses, so an erasure calls no function.
-- Deletes are checked once per statement over its deleted rows (an account's deletion
-- cascades to all of its entries at once).
-- +goose StatementBegin
CREATE FUNCTION ledger_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'ledger_heads' THEN
        RAISE EXCEPTION 'the consent ledger is append-only: its head cannot move back'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RAISE EXCEPTION 'the consent ledger is append-only: an entry cannot be changed, only its sealed evidence erased'
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION ledger_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM old_rows o JOIN accounts a ON a.id = o.account_id) THEN
        IF TG_TABLE_NAME = 'ledger_heads' THEN
            RAISE EXCEPTION 'the consent ledger is append-only: its head is deleted only with its account'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RAISE EXCEPTION 'the consent ledger is append-only: entries are deleted only with their account'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER ledger_append_only_update BEFORE UPDATE ON ledger FOR EACH ROW
WHEN (NEW.account_id IS DISTINCT FROM OLD.account_id OR NEW.seq IS DISTINCT FROM OLD.seq
    OR NEW.created_at IS DISTINCT FROM OLD.created_at OR NEW.kind IS DISTINCT FROM OLD.kind
    OR NEW.person_id IS DISTINCT FROM OLD.person_id OR NEW.list_id IS DISTINCT FROM OLD.list_id
    OR NEW.source IS DISTINCT FROM OLD.source OR NEW.text_version IS DISTINCT FROM OLD.text_version
    OR NEW.text_sha256 IS DISTINCT FROM OLD.text_sha256 OR NEW.evidence_sha256 IS DISTINCT FROM OLD.evidence_sha256
    OR NEW.prev_hash IS DISTINCT FROM OLD.prev_hash OR NEW.hash IS DISTINCT FROM OLD.hash
    OR (NEW.evidence_sealed IS NOT NULL AND NEW.evidence_sealed IS DISTINCT FROM OLD.evidence_sealed))
EXECUTE FUNCTION ledger_refuse_update();

CREATE TRIGGER ledger_append_only_delete AFTER DELETE ON ledger
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();

CREATE TRIGGER ledger_heads_forward_only BEFORE UPDATE ON ledger_heads FOR EACH ROW
WHEN (NEW.account_id IS DISTINCT FROM OLD.account_id OR NEW.seq < OLD.seq)
EXECUTE FUNCTION ledger_refuse_update();

CREATE TRIGGER ledger_heads_append_only_delete AFTER DELETE ON ledger_heads
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_delete();

-- +goose Down
DROP TRIGGER ledger_heads_append_only_delete ON ledger_heads;
DROP TRIGGER ledger_heads_forward_only ON ledger_heads;
DROP TRIGGER ledger_append_only_delete ON ledger;
DROP TRIGGER ledger_append_only_update ON ledger;
DROP FUNCTION ledger_refuse_delete();
DROP FUNCTION ledger_refuse_update();
