-- Workflow engine: definition versions, instances, tasks, the hash-chained audit log and the
-- events the notifications module delivers.

CREATE TABLE workflow_definitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    version BIGINT NOT NULL,
    content_hash TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (key, version),
    UNIQUE (key, content_hash)
);

CREATE TABLE workflow_instances (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_key TEXT NOT NULL,
    version BIGINT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id BIGINT NOT NULL,
    unit_id BIGINT,
    applicant_id BIGINT NOT NULL REFERENCES users(id),
    state TEXT NOT NULL,
    prev_state TEXT,
    status TEXT NOT NULL DEFAULT 'running',
    round BIGINT NOT NULL DEFAULT 1,
    data TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX workflow_instances_subject ON workflow_instances(subject_type, subject_id);
CREATE INDEX workflow_instances_applicant ON workflow_instances(applicant_id, created_at);

CREATE TABLE workflow_tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id BIGINT NOT NULL REFERENCES workflow_instances(id),
    state TEXT NOT NULL,
    round BIGINT NOT NULL,
    assignee_id BIGINT NOT NULL REFERENCES users(id),
    seq BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    action TEXT,
    comment TEXT NOT NULL DEFAULT '',
    form TEXT NOT NULL DEFAULT '{}',
    due_at BIGINT,
    reminded BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    decided_at BIGINT
);
CREATE INDEX workflow_tasks_assignee ON workflow_tasks(assignee_id, status);
CREATE INDEX workflow_tasks_instance ON workflow_tasks(instance_id, round);
CREATE INDEX workflow_tasks_due ON workflow_tasks(status, due_at);

CREATE TABLE workflow_audit (
    seq BIGINT PRIMARY KEY,
    instance_id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor_id BIGINT,
    workflow_key TEXT NOT NULL,
    version BIGINT NOT NULL,
    state TEXT NOT NULL,
    action TEXT NOT NULL,
    to_state TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL DEFAULT '{}',
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX workflow_audit_instance ON workflow_audit(instance_id, seq);

CREATE TABLE workflow_audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO workflow_audit_head (id, seq, hash) VALUES (1, 0, '');

CREATE TABLE workflow_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    instance_id BIGINT NOT NULL,
    task_id BIGINT,
    user_id BIGINT,
    payload TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX workflow_events_pending ON workflow_events(delivered_at, id);
