-- +goose Up
-- Persons' wrapped data keys live in the key store now (keystore.go), apart from the
-- data they open. Store.Migrate copied them there before this migration; it refuses to
-- drop the column if any person's key is missing from the key store.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM persons p WHERE NOT EXISTS (SELECT 1 FROM person_keys k WHERE k.email_hash = p.email_hash)) THEN
        RAISE EXCEPTION 'a person has no data key in the key store';
    END IF;
END $$;
-- +goose StatementEnd
ALTER TABLE persons DROP COLUMN wrapped_key;

-- +goose Down
ALTER TABLE persons ADD COLUMN wrapped_key BYTEA;
UPDATE persons SET wrapped_key = (SELECT k.wrapped_key FROM person_keys k WHERE k.email_hash = persons.email_hash);
