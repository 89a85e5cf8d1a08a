-- +goose Up
-- SQLite only (persons' unique email hash becomes a named index that a big import can
-- drop and build again). PostgreSQL imports keep their constraint. The version is kept
-- in step with SQLite's.
SELECT 1;

-- +goose Down
SELECT 1;
