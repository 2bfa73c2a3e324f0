-- Money issue: settlements confirmed by the units they pay, redemption files, and the
-- personal calendar feed of bookings.

-- Subsidy settlements confirmed by the units they pay (单位确认): one row per unit and
-- settlement with its confirmation or objection; who must confirm is kept on the settlement
-- (the managers of its units, as the workflow's assignee expression reads it).

CREATE TABLE settlement_units (
    settlement_id BIGINT NOT NULL REFERENCES settlements(id),
    unit_id BIGINT NOT NULL REFERENCES units(id),
    -- pending | confirmed | objected
    status TEXT NOT NULL DEFAULT 'pending',
    reason TEXT NOT NULL DEFAULT '',
    decided_by BIGINT REFERENCES users(id),
    decided_at BIGINT,
    PRIMARY KEY (settlement_id, unit_id)
);

-- Comma-separated user ids of the unit managers who confirm the current computation.
ALTER TABLE settlements ADD COLUMN confirmer_ids TEXT NOT NULL DEFAULT '';
-- When the figures were last computed and how many times (1 + recomputations).
ALTER TABLE settlements ADD COLUMN computed_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE settlements ADD COLUMN computations BIGINT NOT NULL DEFAULT 0;

-- Redemption files (兑付材料): the contract and invoice files a redemption carries; review
-- needs at least one of each (the workflow's guards read the counts on the redemption).
CREATE TABLE redemption_files (
    id BIGSERIAL PRIMARY KEY,
    redemption_id BIGINT NOT NULL REFERENCES redemptions(id),
    upload_id BIGINT NOT NULL REFERENCES uploads(id),
    kind TEXT NOT NULL CHECK (kind IN ('contract', 'invoice')),
    created_by BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL
);
CREATE INDEX redemption_files_redemption ON redemption_files(redemption_id);
ALTER TABLE redemptions ADD COLUMN contract_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE redemptions ADD COLUMN invoice_count BIGINT NOT NULL DEFAULT 0;

-- Personal calendar feeds (我的日程订阅): one secret URL per user, stored only as the SHA-256
-- of its token; regenerating replaces the row, so the old URL stops working at once.
CREATE TABLE calendar_feeds (
    user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
