-- +goose Up
-- SQLite gives a new row the largest ID plus one, so deleting the newest person or
-- subscriber would hand their ID to the next one: an erased person's old unsubscribe
-- link or ledger rows would then name someone else. id_floors remembers the largest ID
-- ever deleted, and new IDs count on from it (Engine.newID). PostgreSQL's identity
-- sequences never repeat an ID.
CREATE TABLE id_floors (
    name  TEXT   NOT NULL PRIMARY KEY,
    floor BIGINT NOT NULL
);
INSERT INTO id_floors (name, floor) VALUES
    ('persons', COALESCE((SELECT MAX(id) FROM persons), 0)),
    ('subscribers', COALESCE((SELECT MAX(id) FROM subscribers), 0));
-- +goose StatementBegin
CREATE TRIGGER persons_id_floor AFTER DELETE ON persons BEGIN
    UPDATE id_floors SET floor = max(floor, OLD.id) WHERE name = 'persons';
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER subscribers_id_floor AFTER DELETE ON subscribers BEGIN
    UPDATE id_floors SET floor = max(floor, OLD.id) WHERE name = 'subscribers';
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER subscribers_id_floor;
DROP TRIGGER persons_id_floor;
DROP TABLE id_floors;
