-- Information reporting (信息上报) and data docking (数据对接).
-- The national fields an instrument lacked (name_en, technical, functions, subject codes, …)
-- as one JSON object: optional on the platform, checked only when reporting upward.
ALTER TABLE instruments ADD COLUMN national_json TEXT NOT NULL DEFAULT '{}';

-- A batch of records a unit reports upward: one kind ('instruments' | 'service_records') for
-- one quarter ('2026Q4'). The row is also the push outbox: an approved batch has
-- next_attempt_at set in the approving transaction; a pusher claims it (status 'pushing',
-- claimed_until) before sending, so one push goes out at a time and a dead pusher's claim expires.
CREATE TABLE report_batches (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units(id),
    kind TEXT NOT NULL,
    period TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'draft',
    instance_id BIGINT,
    created_by BIGINT NOT NULL REFERENCES users(id),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    claimed_until BIGINT,
    last_error TEXT NOT NULL DEFAULT '',
    pushed_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX report_batches_unit ON report_batches(unit_id, kind, period);
CREATE INDEX report_batches_push ON report_batches(status, next_attempt_at);

-- One record of a batch as mapped to the national fields when the batch was last built, its
-- problems, and what the upstream platform said about it.
CREATE TABLE report_items (
    id BIGSERIAL PRIMARY KEY,
    batch_id BIGINT NOT NULL REFERENCES report_batches(id) ON DELETE CASCADE,
    record_id BIGINT NOT NULL,
    national_json TEXT NOT NULL,
    problems_json TEXT NOT NULL DEFAULT '[]',
    upstream_status TEXT NOT NULL DEFAULT 'pending',
    upstream_reason TEXT NOT NULL DEFAULT '',
    UNIQUE (batch_id, record_id)
);
CREATE INDEX report_items_record ON report_items(record_id, upstream_status);

-- Docking clients (数据对接客户端): other systems reading through /api/v1/docking with a token
-- stored only as its hash, limited to scopes, until it expires or is revoked.
CREATE TABLE api_clients (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_used_at BIGINT,
    created_by BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL
);

-- Every docking call, for the system admin to read.
CREATE TABLE api_client_calls (
    id BIGSERIAL PRIMARY KEY,
    client_id BIGINT REFERENCES api_clients(id),
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status BIGINT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX api_client_calls_at ON api_client_calls(at);
