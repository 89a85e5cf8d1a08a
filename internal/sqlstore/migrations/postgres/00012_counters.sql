-- +goose Up
-- Counters that keep dashboards instant at millions of rows: list totals and daily
-- growth, kept by triggers on subscriptions; campaign opens/clicks per day and per link,
-- kept by the event writer.
CREATE TABLE list_counts (
    list_id      BIGINT NOT NULL PRIMARY KEY,
    confirmed    BIGINT NOT NULL DEFAULT 0,
    unconfirmed  BIGINT NOT NULL DEFAULT 0,
    unsubscribed BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE list_daily (
    list_id BIGINT NOT NULL,
    day     BIGINT NOT NULL,
    kind    TEXT   NOT NULL,
    n       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (list_id, day, kind)
);
CREATE TABLE campaign_daily (
    campaign_id BIGINT NOT NULL,
    day         BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    n           BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, day, kind)
);
CREATE TABLE campaign_links (
    campaign_id BIGINT NOT NULL,
    url         TEXT   NOT NULL,
    clicks      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, url)
);

INSERT INTO list_counts (list_id, confirmed, unconfirmed, unsubscribed)
SELECT list_id, COUNT(*) FILTER (WHERE status = 'confirmed'), COUNT(*) FILTER (WHERE status = 'unconfirmed'),
    COUNT(*) FILTER (WHERE status = 'unsubscribed') FROM subscriptions GROUP BY list_id;
INSERT INTO list_daily (list_id, day, kind, n) SELECT list_id, created_at / 86400000000, 'subscribed', COUNT(*) FROM subscriptions GROUP BY 1, 2;
INSERT INTO list_daily (list_id, day, kind, n) SELECT list_id, confirmed_at / 86400000000, 'confirmed', COUNT(*) FROM subscriptions WHERE confirmed_at IS NOT NULL GROUP BY 1, 2;
INSERT INTO list_daily (list_id, day, kind, n) SELECT list_id, unsubscribed_at / 86400000000, 'unsubscribed', COUNT(*) FROM subscriptions WHERE unsubscribed_at IS NOT NULL GROUP BY 1, 2;
INSERT INTO campaign_daily (campaign_id, day, kind, n)
SELECT campaign_id, day, kind, SUM(n) FROM (
    SELECT campaign_id, created_at / 86400000000 AS day, kind, COUNT(*) AS n FROM events WHERE kind IN ('open', 'click') GROUP BY 1, 2, 3
    UNION ALL SELECT campaign_id, day, kind, SUM(personal + anonymous) FROM event_daily WHERE kind IN ('open', 'click') GROUP BY 1, 2, 3
) AS d GROUP BY 1, 2, 3;
INSERT INTO campaign_links (campaign_id, url, clicks)
SELECT campaign_id, url, SUM(n) FROM (
    SELECT campaign_id, url, COUNT(*) AS n FROM events WHERE kind = 'click' GROUP BY 1, 2
    UNION ALL SELECT campaign_id, url, SUM(personal + anonymous) FROM event_daily WHERE kind = 'click' GROUP BY 1, 2
) AS l GROUP BY 1, 2;

-- Statement-level triggers with transition tables: one counter update per statement
-- (an import batch of a thousand rows), not per row. Updating one counter row a million
-- times inside one transaction would leave PostgreSQL walking ever longer version chains.
-- +goose StatementBegin
CREATE FUNCTION subscriptions_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO list_counts (list_id, confirmed, unconfirmed, unsubscribed)
    SELECT list_id, COUNT(*) FILTER (WHERE status = 'confirmed'), COUNT(*) FILTER (WHERE status = 'unconfirmed'),
        COUNT(*) FILTER (WHERE status = 'unsubscribed') FROM new_rows GROUP BY list_id
    ON CONFLICT (list_id) DO UPDATE SET confirmed = list_counts.confirmed + excluded.confirmed,
        unconfirmed = list_counts.unconfirmed + excluded.unconfirmed, unsubscribed = list_counts.unsubscribed + excluded.unsubscribed;
    INSERT INTO list_daily (list_id, day, kind, n)
    SELECT list_id, created_at / 86400000000, 'subscribed', COUNT(*) FROM new_rows GROUP BY 1, 2
    ON CONFLICT (list_id, day, kind) DO UPDATE SET n = list_daily.n + excluded.n;
    INSERT INTO list_daily (list_id, day, kind, n)
    SELECT list_id, confirmed_at / 86400000000, 'confirmed', COUNT(*) FROM new_rows WHERE confirmed_at IS NOT NULL GROUP BY 1, 2
    ON CONFLICT (list_id, day, kind) DO UPDATE SET n = list_daily.n + excluded.n;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION subscriptions_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE list_counts c SET confirmed = c.confirmed + d.confirmed, unconfirmed = c.unconfirmed + d.unconfirmed,
        unsubscribed = c.unsubscribed + d.unsubscribed
    FROM (
        SELECT n.list_id,
            SUM((n.status = 'confirmed')::int - (o.status = 'confirmed')::int) AS confirmed,
            SUM((n.status = 'unconfirmed')::int - (o.status = 'unconfirmed')::int) AS unconfirmed,
            SUM((n.status = 'unsubscribed')::int - (o.status = 'unsubscribed')::int) AS unsubscribed
        FROM new_rows n JOIN old_rows o ON o.list_id = n.list_id AND o.subscriber_id = n.subscriber_id
        GROUP BY n.list_id
    ) d WHERE c.list_id = d.list_id;
    INSERT INTO list_daily (list_id, day, kind, n)
    SELECT n.list_id, n.confirmed_at / 86400000000, 'confirmed', COUNT(*)
    FROM new_rows n JOIN old_rows o ON o.list_id = n.list_id AND o.subscriber_id = n.subscriber_id
    WHERE n.confirmed_at IS NOT NULL AND o.confirmed_at IS NULL GROUP BY 1, 2
    ON CONFLICT (list_id, day, kind) DO UPDATE SET n = list_daily.n + excluded.n;
    INSERT INTO list_daily (list_id, day, kind, n)
    SELECT n.list_id, n.unsubscribed_at / 86400000000, 'unsubscribed', COUNT(*)
    FROM new_rows n JOIN old_rows o ON o.list_id = n.list_id AND o.subscriber_id = n.subscriber_id
    WHERE n.unsubscribed_at IS NOT NULL AND o.unsubscribed_at IS NULL GROUP BY 1, 2
    ON CONFLICT (list_id, day, kind) DO UPDATE SET n = list_daily.n + excluded.n;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION subscriptions_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE list_counts c SET confirmed = c.confirmed - d.confirmed, unconfirmed = c.unconfirmed - d.unconfirmed,
        unsubscribed = c.unsubscribed - d.unsubscribed
    FROM (
        SELECT list_id, COUNT(*) FILTER (WHERE status = 'confirmed') AS confirmed, COUNT(*) FILTER (WHERE status = 'unconfirmed') AS unconfirmed,
            COUNT(*) FILTER (WHERE status = 'unsubscribed') AS unsubscribed
        FROM old_rows GROUP BY list_id
    ) d WHERE c.list_id = d.list_id;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER subscriptions_counts_insert AFTER INSERT ON subscriptions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION subscriptions_counts_insert();
CREATE TRIGGER subscriptions_counts_update AFTER UPDATE ON subscriptions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION subscriptions_counts_update();
CREATE TRIGGER subscriptions_counts_delete AFTER DELETE ON subscriptions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION subscriptions_counts_delete();

-- +goose Down
DROP TRIGGER subscriptions_counts_delete ON subscriptions;
DROP TRIGGER subscriptions_counts_update ON subscriptions;
DROP TRIGGER subscriptions_counts_insert ON subscriptions;
DROP FUNCTION subscriptions_counts_delete();
DROP FUNCTION subscriptions_counts_update();
DROP FUNCTION subscriptions_counts_insert();
DROP TABLE campaign_links;
DROP TABLE campaign_daily;
DROP TABLE list_daily;
DROP TABLE list_counts;
