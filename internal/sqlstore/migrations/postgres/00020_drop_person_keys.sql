-- +goose Up
-- The keys are in the key store now (00019, Store.Migrate). Refuse to drop them from
-- persons while any person does not point at one.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM persons p WHERE p.key_id IS NULL OR NOT EXISTS (SELECT 1 FROM person_keys k WHERE k.id = p.key_id)) THEN
        RAISE EXCEPTION 'a person has no data key in the key store';
    END IF;
END $$;
-- +goose StatementEnd
ALTER TABLE persons ALTER COLUMN key_id SET NOT NULL;
ALTER TABLE persons DROP COLUMN wrapped_key;

-- +goose Down
ALTER TABLE persons ADD COLUMN wrapped_key BYTEA;
UPDATE persons SET wrapped_key = (SELECT k.wrapped_key FROM person_keys k WHERE k.id = persons.key_id);
ALTER TABLE persons ALTER COLUMN key_id DROP NOT NULL;
