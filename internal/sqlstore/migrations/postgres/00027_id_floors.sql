-- +goose Up
-- SQLite only (its new rows would reuse a deleted largest ID); PostgreSQL's identity
-- sequences never repeat an ID. Kept so both engines count the same versions.
SELECT 1;

-- +goose Down
SELECT 1;
