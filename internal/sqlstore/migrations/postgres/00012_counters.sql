-- +goose Up
-- Counters that keep dashboards instant at millions of rows: list totals and daily
-- growth, kept by a trigger on subscriptions; campaign opens/clicks per day and per link,
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

-- +goose StatementBegin
CREATE FUNCTION subscriptions_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE list_counts SET confirmed = confirmed - (OLD.status = 'confirmed')::int, unconfirmed = unconfirmed - (OLD.status = 'unconfirmed')::int,
            unsubscribed = unsubscribed - (OLD.status = 'unsubscribed')::int WHERE list_id = OLD.list_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO list_counts (list_id) VALUES (NEW.list_id) ON CONFLICT (list_id) DO NOTHING;
        UPDATE list_counts SET confirmed = confirmed + (NEW.status = 'confirmed')::int, unconfirmed = unconfirmed + (NEW.status = 'unconfirmed')::int,
            unsubscribed = unsubscribed + (NEW.status = 'unsubscribed')::int WHERE list_id = NEW.list_id;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO list_daily (list_id, day, kind, n) VALUES (NEW.list_id, NEW.created_at / 86400000000, 'subscribed', 1)
            ON CONFLICT (list_id, day, kind) DO UPDATE SET n = list_daily.n + 1;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.confirmed_at IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.confirmed_at IS NULL) THEN
        INSERT INTO list_daily (list_id, day, kind, n) VALUES (NEW.list_id, NEW.confirmed_at / 86400000000, 'confirmed', 1)
            ON CONFLICT (list_id, day, kind) DO UPDATE SET n = list_daily.n + 1;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.unsubscribed_at IS NOT NULL AND OLD.unsubscribed_at IS NULL THEN
        INSERT INTO list_daily (list_id, day, kind, n) VALUES (NEW.list_id, NEW.unsubscribed_at / 86400000000, 'unsubscribed', 1)
            ON CONFLICT (list_id, day, kind) DO UPDATE SET n = list_daily.n + 1;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER subscriptions_counts AFTER INSERT OR UPDATE OR DELETE ON subscriptions FOR EACH ROW EXECUTE FUNCTION subscriptions_counts();

-- +goose Down
DROP TRIGGER subscriptions_counts ON subscriptions;
DROP FUNCTION subscriptions_counts();
DROP TABLE campaign_links;
DROP TABLE campaign_daily;
DROP TABLE list_daily;
DROP TABLE list_counts;
