-- +goose Up
-- A sending domain belongs to at most one account on the instance: its DKIM keys sign
-- as it, and the account's outbox view showed the mail sent from it, so a second account
-- adding the same domain could read the first one's mail and sign as it. Domains are
-- stored normalised (lower-case ASCII, A-labels), so a plain index on the column is
-- enough. Where two accounts already share a domain, the earliest claim keeps it and
-- the later rows go, with their keys (ON DELETE CASCADE): the later claim is the one
-- that could not have been made since, and the index cannot be built with both.
DELETE FROM sending_domains
WHERE EXISTS (SELECT 1 FROM sending_domains d WHERE d.domain = sending_domains.domain AND d.id < sending_domains.id);
CREATE UNIQUE INDEX sending_domains_domain ON sending_domains (domain);

-- +goose Down
DROP INDEX sending_domains_domain;
