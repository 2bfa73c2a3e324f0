-- Resources (issue 5): uploaded files, instrument photos, article attachments,
-- unit management rules (单位管理制度) and experts (专家).

CREATE TABLE uploads (
    id BIGSERIAL PRIMARY KEY,
    -- Random hex name plus the extension of the sniffed type; the only name on disk.
    stored_name TEXT NOT NULL UNIQUE,
    original_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    uploaded_by BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL
);

CREATE TABLE instrument_photos (
    instrument_id BIGINT NOT NULL REFERENCES instruments(id) ON DELETE CASCADE,
    upload_id BIGINT NOT NULL REFERENCES uploads(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (instrument_id, upload_id)
);

CREATE TABLE article_attachments (
    article_id BIGINT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    upload_id BIGINT NOT NULL REFERENCES uploads(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (article_id, upload_id)
);

CREATE TABLE unit_rules (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    number TEXT NOT NULL DEFAULT '',
    published_on TEXT,
    effective_on TEXT,
    data_source TEXT NOT NULL DEFAULT '单位填报',
    attachment_id BIGINT REFERENCES uploads(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX unit_rules_unit ON unit_rules(unit_id);

CREATE TABLE experts (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT REFERENCES users(id),
    name TEXT NOT NULL,
    unit_name TEXT NOT NULL,
    title TEXT NOT NULL,
    -- Fields of expertise, '、'-separated as entered (filtered with LIKE).
    fields TEXT NOT NULL,
    joined_on TEXT,
    status TEXT NOT NULL DEFAULT '在库',
    certification_status TEXT NOT NULL DEFAULT 'draft',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Instruments attached to a research platform (same unit).
CREATE TABLE platform_instruments (
    platform_id BIGINT NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
    instrument_id BIGINT NOT NULL REFERENCES instruments(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (platform_id, instrument_id)
);
CREATE INDEX platform_instruments_instrument ON platform_instruments(instrument_id);
