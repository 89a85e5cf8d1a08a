-- +goose Up
-- Per account: delete subscribers with no activity for this many days (0: never, the default).
ALTER TABLE accounts ADD COLUMN inactive_days INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE accounts DROP COLUMN inactive_days;
