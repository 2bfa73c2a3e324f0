-- Issue 18: delegation (委托代理). A user names a deputy for a period; tasks created for the
-- user while it is in force go to the deputy, and the task remembers whom it was for.
CREATE TABLE delegations (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    deputy_id BIGINT NOT NULL REFERENCES users(id),
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    ended_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX delegations_user ON delegations(user_id, ends_at);
CREATE INDEX delegations_deputy ON delegations(deputy_id, ends_at);
ALTER TABLE workflow_tasks ADD COLUMN on_behalf_of BIGINT REFERENCES users(id);
