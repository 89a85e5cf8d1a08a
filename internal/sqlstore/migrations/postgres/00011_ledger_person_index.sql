-- +goose Up
-- A person's ledger entries in one account: both columns in the index, so the planner
-- never prefers walking the account's whole chain by its primary key.
DROP INDEX ledger_person;
CREATE INDEX ledger_person ON ledger (person_id, account_id, seq);

-- +goose Down
DROP INDEX ledger_person;
CREATE INDEX ledger_person ON ledger (person_id);
