-- Statistics (issue 16): approved instruments counted by managing unit, major class, city,
-- usage status and type, kept current by a trigger in the same transaction as every change
-- to an instrument, so the statistics page and the national indicators sum a few thousand
-- rows instead of reading 100,000 instruments. statistics::raw counts the same from the
-- instruments table (tests compare the two). Rows that fall to zero stay, with n = 0.
CREATE TABLE stat_instrument_counts (
    unit_id BIGINT NOT NULL,
    category TEXT NOT NULL,
    city TEXT NOT NULL,
    usage_status TEXT NOT NULL,
    instrument_type TEXT NOT NULL,
    n BIGINT NOT NULL DEFAULT 0,
    value_fen BIGINT NOT NULL DEFAULT 0,
    -- of n, those at or above the national reporting threshold of 50 万元 (value_fen >=
    -- 50000000); a unit test checks reporting::national still says so.
    reportable BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (unit_id, category, city, usage_status, instrument_type)
);

INSERT INTO stat_instrument_counts (unit_id, category, city, usage_status, instrument_type, n, value_fen, reportable)
SELECT unit_id, substr(category_code, 1, 2) || '0000', city, usage_status, instrument_type, COUNT(*), COALESCE(SUM(value_fen), 0), SUM(CASE WHEN value_fen >= 50000000 THEN 1 ELSE 0 END)
FROM instruments WHERE review_status = 'approved'
GROUP BY unit_id, substr(category_code, 1, 2) || '0000', city, usage_status, instrument_type;

CREATE FUNCTION stat_instrument_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.review_status = 'approved' THEN
        INSERT INTO stat_instrument_counts (unit_id, category, city, usage_status, instrument_type, n, value_fen, reportable)
        VALUES (OLD.unit_id, substr(OLD.category_code, 1, 2) || '0000', OLD.city, OLD.usage_status, OLD.instrument_type, -1, -OLD.value_fen, CASE WHEN OLD.value_fen >= 50000000 THEN -1 ELSE 0 END)
        ON CONFLICT (unit_id, category, city, usage_status, instrument_type) DO UPDATE SET n = stat_instrument_counts.n + excluded.n, value_fen = stat_instrument_counts.value_fen + excluded.value_fen, reportable = stat_instrument_counts.reportable + excluded.reportable;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.review_status = 'approved' THEN
        INSERT INTO stat_instrument_counts (unit_id, category, city, usage_status, instrument_type, n, value_fen, reportable)
        VALUES (NEW.unit_id, substr(NEW.category_code, 1, 2) || '0000', NEW.city, NEW.usage_status, NEW.instrument_type, 1, NEW.value_fen, CASE WHEN NEW.value_fen >= 50000000 THEN 1 ELSE 0 END)
        ON CONFLICT (unit_id, category, city, usage_status, instrument_type) DO UPDATE SET n = stat_instrument_counts.n + excluded.n, value_fen = stat_instrument_counts.value_fen + excluded.value_fen, reportable = stat_instrument_counts.reportable + excluded.reportable;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER stat_instrument_insert_delete AFTER INSERT OR DELETE ON instruments FOR EACH ROW EXECUTE FUNCTION stat_instrument_change();
CREATE TRIGGER stat_instrument_update AFTER UPDATE OF review_status, unit_id, category_code, city, usage_status, instrument_type, value_fen ON instruments FOR EACH ROW EXECUTE FUNCTION stat_instrument_change();

-- The top instruments of a year (most hours, then most services, then the newest) read this
-- index backwards and stop after ten, instead of sorting every instrument's year.
DROP INDEX stat_instrument_years_hours;
CREATE INDEX stat_instrument_years_top ON stat_instrument_years(year, hours_x100, services, instrument_id);
