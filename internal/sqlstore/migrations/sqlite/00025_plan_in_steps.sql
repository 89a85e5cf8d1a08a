-- +goose Up
-- A campaign's recipients are planned a few thousand per transaction (planStep), so a
-- million-recipient campaign never holds the database's writer for seconds: planning
-- says whether steps remain, plan_after is the last subscriber ID examined.
ALTER TABLE campaigns ADD COLUMN planning BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE campaigns ADD COLUMN plan_after BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE campaigns DROP COLUMN plan_after;
ALTER TABLE campaigns DROP COLUMN planning;
