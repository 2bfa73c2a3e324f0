-- Expert performance evaluation (绩效评价): a managing unit's declaration for a year with the
-- indicators computed from the platform's data at declaration, the experts the platform
-- admin assigned, and the outcome. Each expert's scores live in their workflow task's form
-- (and so in the audit chain); the aggregate is copied here when the grade is final.

CREATE TABLE evaluations (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units(id),
    year BIGINT NOT NULL,
    self_report TEXT NOT NULL,
    -- JSON snapshot of the computed indicators (effective hours, external hours, ...).
    indicators TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'assigning',
    -- Assigned experts' user ids, comma-separated ("3,5,8"), read by the workflow.
    expert_ids TEXT NOT NULL DEFAULT '',
    expert_count BIGINT NOT NULL DEFAULT 0,
    -- Aggregated score × 100 (e.g. 8650 = 86.50) and the grade the thresholds give it.
    score_x100 BIGINT,
    suggested_grade TEXT,
    grade TEXT,
    override_reason TEXT NOT NULL DEFAULT '',
    policy_version_id BIGINT REFERENCES policy_versions(id),
    published_at BIGINT,
    instance_id BIGINT,
    applicant_id BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL DEFAULT 0
);
-- One live declaration per unit and year; a rejected or withdrawn one may be declared again.
CREATE UNIQUE INDEX evaluations_live ON evaluations(unit_id, year) WHERE status NOT IN ('rejected', 'withdrawn');
CREATE INDEX evaluations_status ON evaluations(status);

CREATE TABLE evaluation_experts (
    evaluation_id BIGINT NOT NULL REFERENCES evaluations(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    assigned_by BIGINT NOT NULL REFERENCES users(id),
    assigned_at BIGINT NOT NULL,
    PRIMARY KEY (evaluation_id, user_id)
);
