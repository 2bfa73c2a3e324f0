-- Units run themselves (issue 13): operational fields and retirement of instruments, change
-- requests and retirements of approved records, invitations with consent and the membership log.

ALTER TABLE instruments ADD COLUMN bookable BIGINT NOT NULL DEFAULT 1;
ALTER TABLE instruments ADD COLUMN retired_at BIGINT;
ALTER TABLE instruments ADD COLUMN retired_reason TEXT NOT NULL DEFAULT '';

-- A change request (变更申请) or a retirement (下线/报废) of an approved record. `after_json`
-- holds the whole record as it will be (a change); the record itself keeps its approved
-- values until the flow approves.
CREATE TABLE record_changes (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('change', 'retirement')),
    record_type TEXT NOT NULL,
    record_id BIGINT NOT NULL,
    unit_id BIGINT NOT NULL REFERENCES units(id),
    status TEXT NOT NULL DEFAULT 'pending',
    title TEXT NOT NULL DEFAULT '',
    before_json TEXT NOT NULL DEFAULT '{}',
    after_json TEXT NOT NULL DEFAULT '{}',
    reason TEXT NOT NULL DEFAULT '',
    requested_by BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    decided_at BIGINT
);
CREATE INDEX record_changes_record ON record_changes(record_type, record_id, id);
-- One open change or retirement per record at a time.
CREATE UNIQUE INDEX record_changes_open ON record_changes(record_type, record_id)
    WHERE status = 'pending';

-- Operational changes (运行状态、是否接受预约) take effect at once and are logged here.
CREATE TABLE instrument_operation_log (
    id BIGSERIAL PRIMARY KEY,
    instrument_id BIGINT NOT NULL REFERENCES instruments(id),
    field TEXT NOT NULL,
    before_value TEXT NOT NULL,
    after_value TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id),
    at BIGINT NOT NULL
);
CREATE INDEX instrument_operation_log_instrument ON instrument_operation_log(instrument_id, id);

-- Invitations (成员邀请): nobody becomes a member without accepting.
CREATE TABLE unit_invitations (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('manager', 'member')),
    status TEXT NOT NULL DEFAULT 'pending',
    invited_by BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    decided_at BIGINT
);
CREATE INDEX unit_invitations_user ON unit_invitations(user_id, status);
CREATE UNIQUE INDEX unit_invitations_open ON unit_invitations(unit_id, user_id)
    WHERE status = 'pending';

-- Every membership change (append-only; also in the hash-chained decision log).
CREATE TABLE membership_log (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    action TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT '',
    actor_id BIGINT,
    at BIGINT NOT NULL
);
CREATE INDEX membership_log_unit ON membership_log(unit_id, id);
