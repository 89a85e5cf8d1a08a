-- +goose Up
-- Optional UTM parameters a campaign adds to its links (JSON; never personal data).
ALTER TABLE campaigns ADD COLUMN utm TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE campaigns DROP COLUMN utm;
