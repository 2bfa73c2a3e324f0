-- Statistics (统计分析, issue 16): pre-aggregated figures kept current by triggers in the
-- same transaction as every change to service_records and bookings (and an instrument's class,
-- city or unit), so the statistics page and the national indicators read a few thousand rows
-- instead of a million. Each table is the sum of its source rows; the backfill below starts it.
-- statistics::raw computes the same figures from the source tables (tests compare them).

-- Approved service records by managing unit, instrument class (major code), city and month
-- (of completion, Asia/Shanghai). rating_1..5: 非常满意, 基本满意, 一般, 不满意, 极差.
CREATE TABLE stat_service_months (
    unit_id BIGINT NOT NULL,
    category TEXT NOT NULL,
    city TEXT NOT NULL,
    year BIGINT NOT NULL,
    month BIGINT NOT NULL,
    services BIGINT NOT NULL DEFAULT 0,
    external_services BIGINT NOT NULL DEFAULT 0,
    hours_x100 BIGINT NOT NULL DEFAULT 0,
    external_hours_x100 BIGINT NOT NULL DEFAULT 0,
    income_fen BIGINT NOT NULL DEFAULT 0,
    external_income_fen BIGINT NOT NULL DEFAULT 0,
    voucher_fen BIGINT NOT NULL DEFAULT 0,
    rating_1 BIGINT NOT NULL DEFAULT 0,
    rating_2 BIGINT NOT NULL DEFAULT 0,
    rating_3 BIGINT NOT NULL DEFAULT 0,
    rating_4 BIGINT NOT NULL DEFAULT 0,
    rating_5 BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (unit_id, category, city, year, month)
);
CREATE INDEX stat_service_months_year ON stat_service_months(year, month);

-- Approved service records per instrument and year (shared instruments, top instruments).
CREATE TABLE stat_instrument_years (
    instrument_id BIGINT NOT NULL,
    unit_id BIGINT NOT NULL,
    year BIGINT NOT NULL,
    services BIGINT NOT NULL DEFAULT 0,
    external_services BIGINT NOT NULL DEFAULT 0,
    hours_x100 BIGINT NOT NULL DEFAULT 0,
    external_hours_x100 BIGINT NOT NULL DEFAULT 0,
    income_fen BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (instrument_id, year)
);
CREATE INDEX stat_instrument_years_unit ON stat_instrument_years(unit_id, year);
CREATE INDEX stat_instrument_years_hours ON stat_instrument_years(year, hours_x100);

-- Bookings by the instrument's unit, month of their start (Asia/Shanghai) and status.
CREATE TABLE stat_booking_months (
    unit_id BIGINT NOT NULL,
    year BIGINT NOT NULL,
    month BIGINT NOT NULL,
    status TEXT NOT NULL,
    n BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (unit_id, year, month, status)
);

-- The instrument figures by unit, class and city read one narrow index, not the wide rows.
CREATE INDEX stat_instruments_cover ON instruments(review_status, unit_id, category_code, city, usage_status, instrument_type, value_fen);

INSERT INTO stat_service_months (unit_id, category, city, year, month, services, external_services, hours_x100, external_hours_x100, income_fen, external_income_fen, voucher_fen, rating_1, rating_2, rating_3, rating_4, rating_5)
SELECT sr.managing_unit_id, substr(i.category_code, 1, 2) || '0000', i.city, sr.year, CAST(strftime('%m', sr.completed_at + 28800, 'unixepoch') AS BIGINT), SUM(1), SUM((CASE WHEN sr.user_unit_id <> sr.managing_unit_id THEN 1 ELSE 0 END)), SUM(sr.service_hours_x100), SUM((CASE WHEN sr.user_unit_id <> sr.managing_unit_id THEN 1 ELSE 0 END) * sr.service_hours_x100), SUM(sr.amount_fen), SUM((CASE WHEN sr.user_unit_id <> sr.managing_unit_id THEN 1 ELSE 0 END) * sr.amount_fen), SUM(sr.voucher_fen), SUM((CASE WHEN sr.rating = '非常满意' THEN 1 ELSE 0 END)), SUM((CASE WHEN sr.rating = '基本满意' THEN 1 ELSE 0 END)), SUM((CASE WHEN sr.rating = '一般' THEN 1 ELSE 0 END)), SUM((CASE WHEN sr.rating = '不满意' THEN 1 ELSE 0 END)), SUM((CASE WHEN sr.rating = '极差' THEN 1 ELSE 0 END))
FROM service_records sr JOIN instruments i ON i.id = sr.instrument_id WHERE sr.review_status = 'approved'
GROUP BY sr.managing_unit_id, substr(i.category_code, 1, 2) || '0000', i.city, sr.year, CAST(strftime('%m', sr.completed_at + 28800, 'unixepoch') AS BIGINT);

INSERT INTO stat_instrument_years (instrument_id, unit_id, year, services, external_services, hours_x100, external_hours_x100, income_fen)
SELECT sr.instrument_id, MIN(sr.managing_unit_id), sr.year, COUNT(*), SUM((CASE WHEN sr.user_unit_id <> sr.managing_unit_id THEN 1 ELSE 0 END)), SUM(sr.service_hours_x100), SUM((CASE WHEN sr.user_unit_id <> sr.managing_unit_id THEN 1 ELSE 0 END) * sr.service_hours_x100), SUM(sr.amount_fen)
FROM service_records sr WHERE sr.review_status = 'approved' GROUP BY sr.instrument_id, sr.year;

INSERT INTO stat_booking_months (unit_id, year, month, status, n)
SELECT i.unit_id, CAST(strftime('%Y', b.start_at + 28800, 'unixepoch') AS BIGINT), CAST(strftime('%m', b.start_at + 28800, 'unixepoch') AS BIGINT), b.status, COUNT(*) FROM bookings b JOIN instruments i ON i.id = b.instrument_id
GROUP BY i.unit_id, CAST(strftime('%Y', b.start_at + 28800, 'unixepoch') AS BIGINT), CAST(strftime('%m', b.start_at + 28800, 'unixepoch') AS BIGINT), b.status;

CREATE TRIGGER stat_sr_insert AFTER INSERT ON service_records BEGIN
    INSERT INTO stat_service_months (unit_id, category, city, year, month, services, external_services, hours_x100, external_hours_x100, income_fen, external_income_fen, voucher_fen, rating_1, rating_2, rating_3, rating_4, rating_5)
    SELECT NEW.managing_unit_id, substr(i.category_code, 1, 2) || '0000', i.city, NEW.year, CAST(strftime('%m', NEW.completed_at + 28800, 'unixepoch') AS BIGINT), 1, (CASE WHEN NEW.user_unit_id <> NEW.managing_unit_id THEN 1 ELSE 0 END), NEW.service_hours_x100, (CASE WHEN NEW.user_unit_id <> NEW.managing_unit_id THEN 1 ELSE 0 END) * NEW.service_hours_x100, NEW.amount_fen, (CASE WHEN NEW.user_unit_id <> NEW.managing_unit_id THEN 1 ELSE 0 END) * NEW.amount_fen, NEW.voucher_fen, (CASE WHEN NEW.rating = '非常满意' THEN 1 ELSE 0 END), (CASE WHEN NEW.rating = '基本满意' THEN 1 ELSE 0 END), (CASE WHEN NEW.rating = '一般' THEN 1 ELSE 0 END), (CASE WHEN NEW.rating = '不满意' THEN 1 ELSE 0 END), (CASE WHEN NEW.rating = '极差' THEN 1 ELSE 0 END)
    FROM instruments i WHERE i.id = NEW.instrument_id AND NEW.review_status = 'approved'
    ON CONFLICT (unit_id, category, city, year, month) DO UPDATE SET services = stat_service_months.services + excluded.services, external_services = stat_service_months.external_services + excluded.external_services, hours_x100 = stat_service_months.hours_x100 + excluded.hours_x100, external_hours_x100 = stat_service_months.external_hours_x100 + excluded.external_hours_x100, income_fen = stat_service_months.income_fen + excluded.income_fen, external_income_fen = stat_service_months.external_income_fen + excluded.external_income_fen, voucher_fen = stat_service_months.voucher_fen + excluded.voucher_fen, rating_1 = stat_service_months.rating_1 + excluded.rating_1, rating_2 = stat_service_months.rating_2 + excluded.rating_2, rating_3 = stat_service_months.rating_3 + excluded.rating_3, rating_4 = stat_service_months.rating_4 + excluded.rating_4, rating_5 = stat_service_months.rating_5 + excluded.rating_5;
    INSERT INTO stat_instrument_years (instrument_id, unit_id, year, services, external_services, hours_x100, external_hours_x100, income_fen)
    SELECT NEW.instrument_id, NEW.managing_unit_id, NEW.year, 1, (CASE WHEN NEW.user_unit_id <> NEW.managing_unit_id THEN 1 ELSE 0 END), NEW.service_hours_x100, (CASE WHEN NEW.user_unit_id <> NEW.managing_unit_id THEN 1 ELSE 0 END) * NEW.service_hours_x100, NEW.amount_fen WHERE NEW.review_status = 'approved'
    ON CONFLICT (instrument_id, year) DO UPDATE SET services = stat_instrument_years.services + excluded.services, external_services = stat_instrument_years.external_services + excluded.external_services, hours_x100 = stat_instrument_years.hours_x100 + excluded.hours_x100, external_hours_x100 = stat_instrument_years.external_hours_x100 + excluded.external_hours_x100, income_fen = stat_instrument_years.income_fen + excluded.income_fen;
END;

CREATE TRIGGER stat_sr_update AFTER UPDATE ON service_records BEGIN
    INSERT INTO stat_service_months (unit_id, category, city, year, month, services, external_services, hours_x100, external_hours_x100, income_fen, external_income_fen, voucher_fen, rating_1, rating_2, rating_3, rating_4, rating_5)
    SELECT OLD.managing_unit_id, substr(i.category_code, 1, 2) || '0000', i.city, OLD.year, CAST(strftime('%m', OLD.completed_at + 28800, 'unixepoch') AS BIGINT), -1, -(CASE WHEN OLD.user_unit_id <> OLD.managing_unit_id THEN 1 ELSE 0 END), -OLD.service_hours_x100, -(CASE WHEN OLD.user_unit_id <> OLD.managing_unit_id THEN 1 ELSE 0 END) * OLD.service_hours_x100, -OLD.amount_fen, -(CASE WHEN OLD.user_unit_id <> OLD.managing_unit_id THEN 1 ELSE 0 END) * OLD.amount_fen, -OLD.voucher_fen, -(CASE WHEN OLD.rating = '非常满意' THEN 1 ELSE 0 END), -(CASE WHEN OLD.rating = '基本满意' THEN 1 ELSE 0 END), -(CASE WHEN OLD.rating = '一般' THEN 1 ELSE 0 END), -(CASE WHEN OLD.rating = '不满意' THEN 1 ELSE 0 END), -(CASE WHEN OLD.rating = '极差' THEN 1 ELSE 0 END)
    FROM instruments i WHERE i.id = OLD.instrument_id AND OLD.review_status = 'approved'
    ON CONFLICT (unit_id, category, city, year, month) DO UPDATE SET services = stat_service_months.services + excluded.services, external_services = stat_service_months.external_services + excluded.external_services, hours_x100 = stat_service_months.hours_x100 + excluded.hours_x100, external_hours_x100 = stat_service_months.external_hours_x100 + excluded.external_hours_x100, income_fen = stat_service_months.income_fen + excluded.income_fen, external_income_fen = stat_service_months.external_income_fen + excluded.external_income_fen, voucher_fen = stat_service_months.voucher_fen + excluded.voucher_fen, rating_1 = stat_service_months.rating_1 + excluded.rating_1, rating_2 = stat_service_months.rating_2 + excluded.rating_2, rating_3 = stat_service_months.rating_3 + excluded.rating_3, rating_4 = stat_service_months.rating_4 + excluded.rating_4, rating_5 = stat_service_months.rating_5 + excluded.rating_5;
    INSERT INTO stat_instrument_years (instrument_id, unit_id, year, services, external_services, hours_x100, external_hours_x100, income_fen)
    SELECT OLD.instrument_id, OLD.managing_unit_id, OLD.year, -1, -(CASE WHEN OLD.user_unit_id <> OLD.managing_unit_id THEN 1 ELSE 0 END), -OLD.service_hours_x100, -(CASE WHEN OLD.user_unit_id <> OLD.managing_unit_id THEN 1 ELSE 0 END) * OLD.service_hours_x100, -OLD.amount_fen WHERE OLD.review_status = 'approved'
    ON CONFLICT (instrument_id, year) DO UPDATE SET services = stat_instrument_years.services + excluded.services, external_services = stat_instrument_years.external_services + excluded.external_services, hours_x100 = stat_instrument_years.hours_x100 + excluded.hours_x100, external_hours_x100 = stat_instrument_years.external_hours_x100 + excluded.external_hours_x100, income_fen = stat_instrument_years.income_fen + excluded.income_fen;
    INSERT INTO stat_service_months (unit_id, category, city, year, month, services, external_services, hours_x100, external_hours_x100, income_fen, external_income_fen, voucher_fen, rating_1, rating_2, rating_3, rating_4, rating_5)
    SELECT NEW.managing_unit_id, substr(i.category_code, 1, 2) || '0000', i.city, NEW.year, CAST(strftime('%m', NEW.completed_at + 28800, 'unixepoch') AS BIGINT), 1, (CASE WHEN NEW.user_unit_id <> NEW.managing_unit_id THEN 1 ELSE 0 END), NEW.service_hours_x100, (CASE WHEN NEW.user_unit_id <> NEW.managing_unit_id THEN 1 ELSE 0 END) * NEW.service_hours_x100, NEW.amount_fen, (CASE WHEN NEW.user_unit_id <> NEW.managing_unit_id THEN 1 ELSE 0 END) * NEW.amount_fen, NEW.voucher_fen, (CASE WHEN NEW.rating = '非常满意' THEN 1 ELSE 0 END), (CASE WHEN NEW.rating = '基本满意' THEN 1 ELSE 0 END), (CASE WHEN NEW.rating = '一般' THEN 1 ELSE 0 END), (CASE WHEN NEW.rating = '不满意' THEN 1 ELSE 0 END), (CASE WHEN NEW.rating = '极差' THEN 1 ELSE 0 END)
    FROM instruments i WHERE i.id = NEW.instrument_id AND NEW.review_status = 'approved'
    ON CONFLICT (unit_id, category, city, year, month) DO UPDATE SET services = stat_service_months.services + excluded.services, external_services = stat_service_months.external_services + excluded.external_services, hours_x100 = stat_service_months.hours_x100 + excluded.hours_x100, external_hours_x100 = stat_service_months.external_hours_x100 + excluded.external_hours_x100, income_fen = stat_service_months.income_fen + excluded.income_fen, external_income_fen = stat_service_months.external_income_fen + excluded.external_income_fen, voucher_fen = stat_service_months.voucher_fen + excluded.voucher_fen, rating_1 = stat_service_months.rating_1 + excluded.rating_1, rating_2 = stat_service_months.rating_2 + excluded.rating_2, rating_3 = stat_service_months.rating_3 + excluded.rating_3, rating_4 = stat_service_months.rating_4 + excluded.rating_4, rating_5 = stat_service_months.rating_5 + excluded.rating_5;
    INSERT INTO stat_instrument_years (instrument_id, unit_id, year, services, external_services, hours_x100, external_hours_x100, income_fen)
    SELECT NEW.instrument_id, NEW.managing_unit_id, NEW.year, 1, (CASE WHEN NEW.user_unit_id <> NEW.managing_unit_id THEN 1 ELSE 0 END), NEW.service_hours_x100, (CASE WHEN NEW.user_unit_id <> NEW.managing_unit_id THEN 1 ELSE 0 END) * NEW.service_hours_x100, NEW.amount_fen WHERE NEW.review_status = 'approved'
    ON CONFLICT (instrument_id, year) DO UPDATE SET services = stat_instrument_years.services + excluded.services, external_services = stat_instrument_years.external_services + excluded.external_services, hours_x100 = stat_instrument_years.hours_x100 + excluded.hours_x100, external_hours_x100 = stat_instrument_years.external_hours_x100 + excluded.external_hours_x100, income_fen = stat_instrument_years.income_fen + excluded.income_fen;
END;

CREATE TRIGGER stat_sr_delete AFTER DELETE ON service_records BEGIN
    INSERT INTO stat_service_months (unit_id, category, city, year, month, services, external_services, hours_x100, external_hours_x100, income_fen, external_income_fen, voucher_fen, rating_1, rating_2, rating_3, rating_4, rating_5)
    SELECT OLD.managing_unit_id, substr(i.category_code, 1, 2) || '0000', i.city, OLD.year, CAST(strftime('%m', OLD.completed_at + 28800, 'unixepoch') AS BIGINT), -1, -(CASE WHEN OLD.user_unit_id <> OLD.managing_unit_id THEN 1 ELSE 0 END), -OLD.service_hours_x100, -(CASE WHEN OLD.user_unit_id <> OLD.managing_unit_id THEN 1 ELSE 0 END) * OLD.service_hours_x100, -OLD.amount_fen, -(CASE WHEN OLD.user_unit_id <> OLD.managing_unit_id THEN 1 ELSE 0 END) * OLD.amount_fen, -OLD.voucher_fen, -(CASE WHEN OLD.rating = '非常满意' THEN 1 ELSE 0 END), -(CASE WHEN OLD.rating = '基本满意' THEN 1 ELSE 0 END), -(CASE WHEN OLD.rating = '一般' THEN 1 ELSE 0 END), -(CASE WHEN OLD.rating = '不满意' THEN 1 ELSE 0 END), -(CASE WHEN OLD.rating = '极差' THEN 1 ELSE 0 END)
    FROM instruments i WHERE i.id = OLD.instrument_id AND OLD.review_status = 'approved'
    ON CONFLICT (unit_id, category, city, year, month) DO UPDATE SET services = stat_service_months.services + excluded.services, external_services = stat_service_months.external_services + excluded.external_services, hours_x100 = stat_service_months.hours_x100 + excluded.hours_x100, external_hours_x100 = stat_service_months.external_hours_x100 + excluded.external_hours_x100, income_fen = stat_service_months.income_fen + excluded.income_fen, external_income_fen = stat_service_months.external_income_fen + excluded.external_income_fen, voucher_fen = stat_service_months.voucher_fen + excluded.voucher_fen, rating_1 = stat_service_months.rating_1 + excluded.rating_1, rating_2 = stat_service_months.rating_2 + excluded.rating_2, rating_3 = stat_service_months.rating_3 + excluded.rating_3, rating_4 = stat_service_months.rating_4 + excluded.rating_4, rating_5 = stat_service_months.rating_5 + excluded.rating_5;
    INSERT INTO stat_instrument_years (instrument_id, unit_id, year, services, external_services, hours_x100, external_hours_x100, income_fen)
    SELECT OLD.instrument_id, OLD.managing_unit_id, OLD.year, -1, -(CASE WHEN OLD.user_unit_id <> OLD.managing_unit_id THEN 1 ELSE 0 END), -OLD.service_hours_x100, -(CASE WHEN OLD.user_unit_id <> OLD.managing_unit_id THEN 1 ELSE 0 END) * OLD.service_hours_x100, -OLD.amount_fen WHERE OLD.review_status = 'approved'
    ON CONFLICT (instrument_id, year) DO UPDATE SET services = stat_instrument_years.services + excluded.services, external_services = stat_instrument_years.external_services + excluded.external_services, hours_x100 = stat_instrument_years.hours_x100 + excluded.hours_x100, external_hours_x100 = stat_instrument_years.external_hours_x100 + excluded.external_hours_x100, income_fen = stat_instrument_years.income_fen + excluded.income_fen;
END;

CREATE TRIGGER stat_booking_insert AFTER INSERT ON bookings BEGIN
    INSERT INTO stat_booking_months (unit_id, year, month, status, n)
    SELECT i.unit_id, CAST(strftime('%Y', NEW.start_at + 28800, 'unixepoch') AS BIGINT), CAST(strftime('%m', NEW.start_at + 28800, 'unixepoch') AS BIGINT), NEW.status, 1 FROM instruments i WHERE i.id = NEW.instrument_id
    ON CONFLICT (unit_id, year, month, status) DO UPDATE SET n = stat_booking_months.n + excluded.n;
END;

CREATE TRIGGER stat_booking_update AFTER UPDATE OF status, start_at, instrument_id ON bookings BEGIN
    INSERT INTO stat_booking_months (unit_id, year, month, status, n)
    SELECT i.unit_id, CAST(strftime('%Y', OLD.start_at + 28800, 'unixepoch') AS BIGINT), CAST(strftime('%m', OLD.start_at + 28800, 'unixepoch') AS BIGINT), OLD.status, -1 FROM instruments i WHERE i.id = OLD.instrument_id
    ON CONFLICT (unit_id, year, month, status) DO UPDATE SET n = stat_booking_months.n + excluded.n;
    INSERT INTO stat_booking_months (unit_id, year, month, status, n)
    SELECT i.unit_id, CAST(strftime('%Y', NEW.start_at + 28800, 'unixepoch') AS BIGINT), CAST(strftime('%m', NEW.start_at + 28800, 'unixepoch') AS BIGINT), NEW.status, 1 FROM instruments i WHERE i.id = NEW.instrument_id
    ON CONFLICT (unit_id, year, month, status) DO UPDATE SET n = stat_booking_months.n + excluded.n;
END;

CREATE TRIGGER stat_booking_delete AFTER DELETE ON bookings BEGIN
    INSERT INTO stat_booking_months (unit_id, year, month, status, n)
    SELECT i.unit_id, CAST(strftime('%Y', OLD.start_at + 28800, 'unixepoch') AS BIGINT), CAST(strftime('%m', OLD.start_at + 28800, 'unixepoch') AS BIGINT), OLD.status, -1 FROM instruments i WHERE i.id = OLD.instrument_id
    ON CONFLICT (unit_id, year, month, status) DO UPDATE SET n = stat_booking_months.n + excluded.n;
END;

CREATE TRIGGER stat_instrument_move AFTER UPDATE OF category_code, city ON instruments
WHEN OLD.category_code <> NEW.category_code OR OLD.city <> NEW.city BEGIN
    INSERT INTO stat_service_months (unit_id, category, city, year, month, services, external_services, hours_x100, external_hours_x100, income_fen, external_income_fen, voucher_fen, rating_1, rating_2, rating_3, rating_4, rating_5)
    SELECT sr.managing_unit_id, substr(OLD.category_code, 1, 2) || '0000', OLD.city, sr.year, CAST(strftime('%m', sr.completed_at + 28800, 'unixepoch') AS BIGINT), -SUM(1), -SUM((CASE WHEN sr.user_unit_id <> sr.managing_unit_id THEN 1 ELSE 0 END)), -SUM(sr.service_hours_x100), -SUM((CASE WHEN sr.user_unit_id <> sr.managing_unit_id THEN 1 ELSE 0 END) * sr.service_hours_x100), -SUM(sr.amount_fen), -SUM((CASE WHEN sr.user_unit_id <> sr.managing_unit_id THEN 1 ELSE 0 END) * sr.amount_fen), -SUM(sr.voucher_fen), -SUM((CASE WHEN sr.rating = '非常满意' THEN 1 ELSE 0 END)), -SUM((CASE WHEN sr.rating = '基本满意' THEN 1 ELSE 0 END)), -SUM((CASE WHEN sr.rating = '一般' THEN 1 ELSE 0 END)), -SUM((CASE WHEN sr.rating = '不满意' THEN 1 ELSE 0 END)), -SUM((CASE WHEN sr.rating = '极差' THEN 1 ELSE 0 END))
    FROM service_records sr WHERE sr.instrument_id = OLD.id AND sr.review_status = 'approved'
    GROUP BY sr.managing_unit_id, sr.year, CAST(strftime('%m', sr.completed_at + 28800, 'unixepoch') AS BIGINT)
    ON CONFLICT (unit_id, category, city, year, month) DO UPDATE SET services = stat_service_months.services + excluded.services, external_services = stat_service_months.external_services + excluded.external_services, hours_x100 = stat_service_months.hours_x100 + excluded.hours_x100, external_hours_x100 = stat_service_months.external_hours_x100 + excluded.external_hours_x100, income_fen = stat_service_months.income_fen + excluded.income_fen, external_income_fen = stat_service_months.external_income_fen + excluded.external_income_fen, voucher_fen = stat_service_months.voucher_fen + excluded.voucher_fen, rating_1 = stat_service_months.rating_1 + excluded.rating_1, rating_2 = stat_service_months.rating_2 + excluded.rating_2, rating_3 = stat_service_months.rating_3 + excluded.rating_3, rating_4 = stat_service_months.rating_4 + excluded.rating_4, rating_5 = stat_service_months.rating_5 + excluded.rating_5;
    INSERT INTO stat_service_months (unit_id, category, city, year, month, services, external_services, hours_x100, external_hours_x100, income_fen, external_income_fen, voucher_fen, rating_1, rating_2, rating_3, rating_4, rating_5)
    SELECT sr.managing_unit_id, substr(NEW.category_code, 1, 2) || '0000', NEW.city, sr.year, CAST(strftime('%m', sr.completed_at + 28800, 'unixepoch') AS BIGINT), SUM(1), SUM((CASE WHEN sr.user_unit_id <> sr.managing_unit_id THEN 1 ELSE 0 END)), SUM(sr.service_hours_x100), SUM((CASE WHEN sr.user_unit_id <> sr.managing_unit_id THEN 1 ELSE 0 END) * sr.service_hours_x100), SUM(sr.amount_fen), SUM((CASE WHEN sr.user_unit_id <> sr.managing_unit_id THEN 1 ELSE 0 END) * sr.amount_fen), SUM(sr.voucher_fen), SUM((CASE WHEN sr.rating = '非常满意' THEN 1 ELSE 0 END)), SUM((CASE WHEN sr.rating = '基本满意' THEN 1 ELSE 0 END)), SUM((CASE WHEN sr.rating = '一般' THEN 1 ELSE 0 END)), SUM((CASE WHEN sr.rating = '不满意' THEN 1 ELSE 0 END)), SUM((CASE WHEN sr.rating = '极差' THEN 1 ELSE 0 END))
    FROM service_records sr WHERE sr.instrument_id = NEW.id AND sr.review_status = 'approved'
    GROUP BY sr.managing_unit_id, sr.year, CAST(strftime('%m', sr.completed_at + 28800, 'unixepoch') AS BIGINT)
    ON CONFLICT (unit_id, category, city, year, month) DO UPDATE SET services = stat_service_months.services + excluded.services, external_services = stat_service_months.external_services + excluded.external_services, hours_x100 = stat_service_months.hours_x100 + excluded.hours_x100, external_hours_x100 = stat_service_months.external_hours_x100 + excluded.external_hours_x100, income_fen = stat_service_months.income_fen + excluded.income_fen, external_income_fen = stat_service_months.external_income_fen + excluded.external_income_fen, voucher_fen = stat_service_months.voucher_fen + excluded.voucher_fen, rating_1 = stat_service_months.rating_1 + excluded.rating_1, rating_2 = stat_service_months.rating_2 + excluded.rating_2, rating_3 = stat_service_months.rating_3 + excluded.rating_3, rating_4 = stat_service_months.rating_4 + excluded.rating_4, rating_5 = stat_service_months.rating_5 + excluded.rating_5;
END;
