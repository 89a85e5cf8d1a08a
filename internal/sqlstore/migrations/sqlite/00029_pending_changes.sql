-- +goose Up
-- What a double opt-in request asks to change of a subscriber already known (name,
-- attributes, tracking consent), sealed under the person's key: it applies when the
-- link is used, not when anyone types the address into a form. NULL: nothing to apply
-- (requests made before this migration).
ALTER TABLE pending_confirmations ADD COLUMN changes_sealed BLOB;

-- +goose Down
ALTER TABLE pending_confirmations DROP COLUMN changes_sealed;
