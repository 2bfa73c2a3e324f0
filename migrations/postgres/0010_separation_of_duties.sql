-- Separation of duties and the money races (issue 14).

-- One running instance per flow and subject: two concurrent submits cannot both start one
-- (the engine maps the violation to 409 already_running).
CREATE UNIQUE INDEX workflow_instances_running
    ON workflow_instances(workflow_key, subject_type, subject_id) WHERE status = 'running';

-- One live settlement per year (a cancelled one does not count): 409 settlement_exists.
CREATE UNIQUE INDEX settlements_live_year ON settlements(year) WHERE status <> 'cancelled';

-- Redemption items are released when their redemption is withdrawn or rejected: the row
-- stays (the history shows what was applied for) with released_at set, and a booking may be
-- in at most one unreleased item.
ALTER TABLE redemption_items DROP CONSTRAINT redemption_items_booking_id_key;
ALTER TABLE redemption_items ADD COLUMN released_at BIGINT;
UPDATE redemption_items SET released_at = 0
    WHERE redemption_id IN (SELECT id FROM redemptions WHERE status IN ('rejected', 'withdrawn'));
CREATE UNIQUE INDEX redemption_items_live_booking ON redemption_items(booking_id) WHERE released_at IS NULL;

-- Every change of a unit's grade (绩效等级变更记录): who, old, new, why. An override of a
-- published evaluation result carries its reason.
CREATE TABLE grade_changes (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units(id),
    year BIGINT NOT NULL,
    old_grade TEXT,
    new_grade TEXT NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    override_reason TEXT NOT NULL DEFAULT '',
    changed_by BIGINT REFERENCES users(id),
    changed_at BIGINT NOT NULL
);
CREATE INDEX grade_changes_unit ON grade_changes(unit_id, year, id);

-- Self-dealing (关联交易): a platform decision allowing vouchers on a booking whose user unit
-- and instrument unit share a member.
ALTER TABLE bookings ADD COLUMN voucher_exception_by BIGINT REFERENCES users(id);
ALTER TABLE bookings ADD COLUMN voucher_exception_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE bookings ADD COLUMN voucher_exception_at BIGINT;
