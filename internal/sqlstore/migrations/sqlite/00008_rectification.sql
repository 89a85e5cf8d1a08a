-- +goose Up
-- Which subscriber attributes people may correct themselves in the portal (their name
-- always): comma-separated attribute names.
ALTER TABLE accounts ADD COLUMN editable_attributes TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE accounts DROP COLUMN editable_attributes;
