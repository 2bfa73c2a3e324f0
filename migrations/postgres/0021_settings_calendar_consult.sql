-- Issue 20: what the system admin publishes (the working-day calendar by year, the site
-- settings), expert consultations (专家咨询) and achievement-transfer interest (成果转化对接).

-- Bumped in every transaction that publishes a calendar year or settings; each node compares
-- it with its snapshot on every request and before every job, and reloads when it moved.
CREATE TABLE published_revision (
    id BIGINT PRIMARY KEY,
    revision BIGINT NOT NULL
);
INSERT INTO published_revision (id, revision) VALUES (1, 0);

-- A year of the State Council's notice: days off and weekend working days (JSON date lists).
CREATE TABLE calendar_years (
    year BIGINT PRIMARY KEY,
    holidays TEXT NOT NULL,
    workdays TEXT NOT NULL,
    published_by BIGINT REFERENCES users(id),
    published_at BIGINT NOT NULL
);

-- The site settings (平台配置) as one JSON document.
CREATE TABLE platform_settings (
    id BIGINT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_by BIGINT REFERENCES users(id),
    updated_at BIGINT NOT NULL
);

-- The audit trail of both: who changed what, before and after (JSON).
CREATE TABLE platform_changes (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    before_value TEXT NOT NULL,
    after_value TEXT NOT NULL,
    changed_by BIGINT REFERENCES users(id),
    changed_at BIGINT NOT NULL
);
CREATE INDEX platform_changes_kind ON platform_changes(kind, id);

CREATE TABLE consultations (
    id BIGSERIAL PRIMARY KEY,
    field TEXT NOT NULL,
    title TEXT NOT NULL,
    question TEXT NOT NULL,
    unit_id BIGINT NOT NULL REFERENCES units(id),
    asker_id BIGINT NOT NULL REFERENCES users(id),
    -- open | answered | closed
    status TEXT NOT NULL DEFAULT 'open',
    -- Set by the platform when it reassigns: then only this expert (users.id) sees it.
    assigned_user_id BIGINT REFERENCES users(id),
    rating BIGINT,
    -- The asker's consent to show the closed consultation publicly (0/1).
    public BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    closed_at BIGINT
);
CREATE INDEX consultations_asker ON consultations(asker_id);
CREATE INDEX consultations_status ON consultations(status, public);

CREATE TABLE consultation_messages (
    id BIGSERIAL PRIMARY KEY,
    consultation_id BIGINT NOT NULL REFERENCES consultations(id),
    author_id BIGINT NOT NULL REFERENCES users(id),
    -- answer (an expert) | followup (the asker)
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX consultation_messages_consultation ON consultation_messages(consultation_id, id);

CREATE TABLE achievement_interests (
    id BIGSERIAL PRIMARY KEY,
    achievement_id BIGINT NOT NULL REFERENCES achievements(id),
    unit_id BIGINT NOT NULL REFERENCES units(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    message TEXT NOT NULL,
    -- new | contacted | agreed | closed
    status TEXT NOT NULL DEFAULT 'new',
    reply TEXT NOT NULL DEFAULT '',
    handled_by BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    agreed_at BIGINT
);
CREATE INDEX achievement_interests_achievement ON achievement_interests(achievement_id);
CREATE INDEX achievement_interests_unit ON achievement_interests(unit_id);

-- The public page cache (0020) is current only while nothing it shows has changed: the site
-- settings (header, footer, notice banner) and published Q&A appear on cached pages too.
INSERT INTO page_versions (name, version) VALUES ('published_revision', 0), ('consultations', 0);
CREATE TRIGGER page_versions_published_revision AFTER UPDATE ON published_revision
    FOR EACH STATEMENT EXECUTE FUNCTION page_versions_bump();
CREATE TRIGGER page_versions_consultations AFTER INSERT OR UPDATE OR DELETE ON consultations
    FOR EACH STATEMENT EXECUTE FUNCTION page_versions_bump();
