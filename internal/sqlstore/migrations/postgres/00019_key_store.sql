-- +goose Up
-- Persons' wrapped data keys move to the key store (keystore.go), apart from the data
-- they open. This adds the pointer; Store.Migrate then copies each key to the key store
-- and points its person at it; 00020 drops the keys from persons.
ALTER TABLE persons ADD COLUMN key_id BIGINT;

-- +goose Down
ALTER TABLE persons DROP COLUMN key_id;
