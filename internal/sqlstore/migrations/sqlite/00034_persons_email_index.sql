-- +goose NO TRANSACTION
-- +goose Up
-- The uniqueness of persons.email_hash moves from the column's UNIQUE (an index SQLite
-- names itself and never lets go) to a named unique index, persons_email_hash, that a
-- big import can drop inside its transaction and build again, sorted, at its end:
-- keyed hashes come in random order, and inserting a million of them one by one costs
-- an import more than all its other indexes together (sqlstore/import.go, deferIndex).
--
-- SQLite cannot change a column's constraints in place: the table is copied. Other
-- tables refer to persons, so this runs outside goose's transaction, with foreign key
-- checks off for the copy (SQLite's own recipe for changing a table's schema), in a
-- transaction of its own; the Store's migrations run on its one writer connection.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE persons_new (
    id          INTEGER PRIMARY KEY,
    email_hash  BLOB   NOT NULL,
    created_at  BIGINT NOT NULL,
    key_id      BIGINT
);
INSERT INTO persons_new (id, email_hash, created_at, key_id) SELECT id, email_hash, created_at, key_id FROM persons;
DROP TABLE persons;
ALTER TABLE persons_new RENAME TO persons;
CREATE UNIQUE INDEX persons_email_hash ON persons (email_hash);
-- +goose StatementBegin
CREATE TRIGGER persons_id_floor AFTER DELETE ON persons BEGIN
    UPDATE id_floors SET floor = max(floor, OLD.id) WHERE name = 'persons';
END;
-- +goose StatementEnd
COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE persons_new (
    id          INTEGER PRIMARY KEY,
    email_hash  BLOB   NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    key_id      BIGINT
);
INSERT INTO persons_new (id, email_hash, created_at, key_id) SELECT id, email_hash, created_at, key_id FROM persons;
DROP TABLE persons;
ALTER TABLE persons_new RENAME TO persons;
-- +goose StatementBegin
CREATE TRIGGER persons_id_floor AFTER DELETE ON persons BEGIN
    UPDATE id_floors SET floor = max(floor, OLD.id) WHERE name = 'persons';
END;
-- +goose StatementEnd
COMMIT;
PRAGMA foreign_keys = ON;
