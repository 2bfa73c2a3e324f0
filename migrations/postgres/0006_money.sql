-- Money: policy versions, bookings, voucher accounts and ledger, service records,
-- redemptions, grades and subsidy settlements. Amounts in fen (BIGINT).

CREATE TABLE policy_versions (
    id BIGSERIAL PRIMARY KEY,
    content TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    created_by BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL
);

CREATE TABLE bookings (
    id BIGSERIAL PRIMARY KEY,
    instrument_id BIGINT NOT NULL REFERENCES instruments(id),
    unit_id BIGINT NOT NULL REFERENCES units(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    start_at BIGINT NOT NULL,
    end_at BIGINT NOT NULL,
    purpose TEXT NOT NULL,
    sample_info TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'requested',
    live BIGINT NOT NULL DEFAULT 1,
    price_fen BIGINT,
    voucher_fen BIGINT NOT NULL DEFAULT 0,
    voucher_year BIGINT,
    customs_notice_no TEXT NOT NULL DEFAULT '',
    cancel_reason TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK (end_at > start_at)
);
CREATE INDEX bookings_instrument ON bookings(instrument_id, live, start_at);
CREATE INDEX bookings_unit ON bookings(unit_id);

CREATE TABLE voucher_applications (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units(id),
    year BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    instance_id BIGINT,
    applicant_id BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (unit_id, year)
);

CREATE TABLE voucher_accounts (
    unit_id BIGINT NOT NULL REFERENCES units(id),
    year BIGINT NOT NULL,
    quota_fen BIGINT NOT NULL,
    lock_version BIGINT NOT NULL DEFAULT 0,
    granted_at BIGINT NOT NULL,
    policy_version_id BIGINT REFERENCES policy_versions(id),
    PRIMARY KEY (unit_id, year)
);

-- Append-only: the available balance is SUM(delta_fen); `amount_fen` is the entry's size.
CREATE TABLE voucher_ledger (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units(id),
    year BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('grant', 'reserve', 'release', 'redeem', 'expire')),
    amount_fen BIGINT NOT NULL,
    delta_fen BIGINT NOT NULL,
    booking_id BIGINT REFERENCES bookings(id),
    note TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE INDEX voucher_ledger_account ON voucher_ledger(unit_id, year);

CREATE TABLE service_records (
    id BIGSERIAL PRIMARY KEY,
    booking_id BIGINT NOT NULL UNIQUE REFERENCES bookings(id),
    order_no TEXT NOT NULL UNIQUE,
    instrument_id BIGINT NOT NULL REFERENCES instruments(id),
    managing_unit_id BIGINT NOT NULL REFERENCES units(id),
    user_unit_id BIGINT NOT NULL REFERENCES units(id),
    applicant_name TEXT NOT NULL,
    applicant_phone TEXT NOT NULL DEFAULT '',
    amount_fen BIGINT NOT NULL,
    voucher_fen BIGINT NOT NULL,
    service_hours_x100 BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT NOT NULL,
    completed_at BIGINT NOT NULL,
    year BIGINT NOT NULL,
    data_source TEXT NOT NULL DEFAULT '平台预约',
    review_status TEXT NOT NULL DEFAULT 'approved',
    rating TEXT,
    rating_text TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE INDEX service_records_instrument ON service_records(instrument_id, year);

CREATE TABLE redemptions (
    id BIGSERIAL PRIMARY KEY,
    managing_unit_id BIGINT NOT NULL REFERENCES units(id),
    status TEXT NOT NULL DEFAULT 'pending',
    total_fen BIGINT NOT NULL,
    instance_id BIGINT,
    created_by BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL DEFAULT 0,
    decided_at BIGINT
);

CREATE TABLE redemption_items (
    redemption_id BIGINT NOT NULL REFERENCES redemptions(id),
    booking_id BIGINT NOT NULL UNIQUE REFERENCES bookings(id),
    voucher_fen BIGINT NOT NULL,
    PRIMARY KEY (redemption_id, booking_id)
);

CREATE TABLE unit_grades (
    unit_id BIGINT NOT NULL REFERENCES units(id),
    year BIGINT NOT NULL,
    grade TEXT NOT NULL CHECK (grade IN ('excellent', 'good', 'qualified', 'unqualified')),
    reason TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    decided_by BIGINT REFERENCES users(id),
    decided_at BIGINT NOT NULL,
    PRIMARY KEY (unit_id, year)
);

CREATE TABLE settlements (
    id BIGSERIAL PRIMARY KEY,
    year BIGINT NOT NULL,
    policy_version_id BIGINT NOT NULL REFERENCES policy_versions(id),
    total_fen BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT 'computed',
    instance_id BIGINT,
    -- Settlements belong to no unit; the column exists for the workflow's recusal lookup.
    unit_id BIGINT,
    created_by BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE settlement_lines (
    settlement_id BIGINT NOT NULL REFERENCES settlements(id),
    unit_id BIGINT NOT NULL REFERENCES units(id),
    instrument_id BIGINT NOT NULL REFERENCES instruments(id),
    grade TEXT NOT NULL,
    income_fen BIGINT NOT NULL,
    uncapped_fen BIGINT NOT NULL,
    amount_fen BIGINT NOT NULL,
    PRIMARY KEY (settlement_id, instrument_id)
);

-- No double booking, ever: live bookings of one instrument may not overlap.
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap
    EXCLUDE USING gist (instrument_id WITH =, int8range(start_at, end_at) WITH &&) WHERE (live = 1);
