-- +goose Up
-- SQLite only (subscriptions and the ledger become WITHOUT ROWID tables there): a
-- PostgreSQL table is a heap plus its primary-key index either way. The version is kept
-- in step with SQLite's.
SELECT 1;

-- +goose Down
SELECT 1;
