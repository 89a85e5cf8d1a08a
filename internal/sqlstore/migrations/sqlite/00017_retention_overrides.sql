-- +goose Up
-- Per account: shorter retention than the instance's (0: the instance rule applies).
ALTER TABLE accounts ADD COLUMN event_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN unconfirmed_days INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE accounts DROP COLUMN unconfirmed_days;
ALTER TABLE accounts DROP COLUMN event_days;
