-- +goose Up
-- Persons' wrapped data keys live in the key store now (keystore.go), apart from the
-- data they open. Store.Migrate copied them there before this migration; it refuses to
-- drop the column if any person's key is missing from the key store.
CREATE TEMP TABLE key_store_check (missing INTEGER CHECK (missing = 0));
INSERT INTO key_store_check
SELECT COUNT(*) FROM persons p WHERE NOT EXISTS (SELECT 1 FROM person_keys k WHERE k.email_hash = p.email_hash);
DROP TABLE key_store_check;
ALTER TABLE persons DROP COLUMN wrapped_key;

-- +goose Down
ALTER TABLE persons ADD COLUMN wrapped_key BLOB;
UPDATE persons SET wrapped_key = (SELECT k.wrapped_key FROM person_keys k WHERE k.email_hash = persons.email_hash);
