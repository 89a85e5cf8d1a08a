-- +goose Up
-- The keys are in the key store now (00019, Store.Migrate). Refuse to drop them from
-- persons while any person does not point at one.
CREATE TEMP TABLE key_store_check (missing INTEGER CHECK (missing = 0));
INSERT INTO key_store_check
SELECT COUNT(*) FROM persons p WHERE p.key_id IS NULL OR NOT EXISTS (SELECT 1 FROM person_keys k WHERE k.id = p.key_id);
DROP TABLE key_store_check;
ALTER TABLE persons DROP COLUMN wrapped_key;

-- +goose Down
ALTER TABLE persons ADD COLUMN wrapped_key BLOB;
UPDATE persons SET wrapped_key = (SELECT k.wrapped_key FROM person_keys k WHERE k.id = persons.key_id);
