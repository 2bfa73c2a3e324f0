-- Foundation: accounts, roles, sessions, units and the resources the portal shows.
-- Portable conventions: BIGINT ids/money(fen)/unix-second timestamps, TEXT dates.

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name TEXT NOT NULL,
    email TEXT,
    phone TEXT,
    is_active BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    password_changed_at BIGINT
);

CREATE TABLE roles (
    id BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    builtin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE role_permissions (
    role_id BIGINT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    PRIMARY KEY (role_id, permission)
);

CREATE TABLE user_roles (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id BIGINT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE login_failures (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL,
    ip TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures(username, ip, at);

CREATE TABLE units (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('managing', 'user')),
    nature TEXT NOT NULL,
    credit_code TEXT NOT NULL UNIQUE,
    contact_name TEXT NOT NULL,
    contact_mobile TEXT NOT NULL,
    contact_email TEXT,
    enterprise_type TEXT NOT NULL DEFAULT 'other',
    dishonest BIGINT NOT NULL DEFAULT 0,
    abnormal_operation BIGINT NOT NULL DEFAULT 0,
    certification_status TEXT NOT NULL DEFAULT 'draft',
    city TEXT NOT NULL DEFAULT '许昌市',
    address TEXT NOT NULL DEFAULT '',
    website TEXT NOT NULL DEFAULT '',
    intro TEXT NOT NULL DEFAULT '',
    joined_on TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE unit_members (
    unit_id BIGINT NOT NULL REFERENCES units(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('manager', 'member')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (unit_id, user_id)
);
CREATE INDEX unit_members_user ON unit_members(user_id);

CREATE TABLE instruments (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units(id),
    name TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    manufacturer TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT '',
    category_code TEXT NOT NULL,
    department TEXT NOT NULL DEFAULT '',
    value_fen BIGINT NOT NULL,
    open_to_public BIGINT NOT NULL DEFAULT 1,
    city TEXT NOT NULL DEFAULT '许昌市',
    customs_supervised BIGINT NOT NULL DEFAULT 0,
    customs_declaration_no TEXT NOT NULL DEFAULT '',
    customs_release_date TEXT,
    usage_status TEXT NOT NULL DEFAULT '正常',
    sharing_mode TEXT NOT NULL DEFAULT '外部共享',
    source TEXT NOT NULL DEFAULT '购置',
    funding TEXT NOT NULL DEFAULT '单位自有',
    instrument_type TEXT NOT NULL DEFAULT '通用',
    description TEXT NOT NULL DEFAULT '',
    service_content TEXT NOT NULL DEFAULT '',
    typical_achievements TEXT NOT NULL DEFAULT '',
    location TEXT NOT NULL DEFAULT '',
    fee_standard TEXT NOT NULL DEFAULT '',
    data_source TEXT NOT NULL DEFAULT '单位填报',
    review_status TEXT NOT NULL DEFAULT 'draft',
    joined_on TEXT,
    purchase_date TEXT,
    slot_minutes BIGINT NOT NULL DEFAULT 30,
    min_lead_hours BIGINT NOT NULL DEFAULT 1,
    max_days_ahead BIGINT NOT NULL DEFAULT 90,
    max_duration_hours BIGINT NOT NULL DEFAULT 10,
    annual_running_hours BIGINT NOT NULL DEFAULT 0,
    annual_service_hours BIGINT NOT NULL DEFAULT 0,
    service_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX instruments_unit ON instruments(unit_id);
CREATE INDEX instruments_review ON instruments(review_status, category_code);

CREATE TABLE platforms (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units(id),
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    platform_type TEXT NOT NULL,
    data_source TEXT NOT NULL DEFAULT '单位填报',
    description TEXT NOT NULL DEFAULT '',
    review_status TEXT NOT NULL DEFAULT 'draft',
    joined_on TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE services (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units(id),
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price_fen BIGINT,
    price_unit TEXT NOT NULL DEFAULT '样',
    sample_requirements TEXT NOT NULL DEFAULT '',
    turnaround_days BIGINT NOT NULL DEFAULT 5,
    service_status TEXT NOT NULL DEFAULT '服务中',
    description TEXT NOT NULL DEFAULT '',
    review_status TEXT NOT NULL DEFAULT 'draft',
    published_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE achievements (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units(id),
    title TEXT NOT NULL,
    field TEXT NOT NULL,
    maturity TEXT NOT NULL,
    transfer_mode TEXT NOT NULL,
    price_fen BIGINT,
    holder TEXT NOT NULL,
    contact_name TEXT NOT NULL DEFAULT '',
    contact_phone TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    review_status TEXT NOT NULL DEFAULT 'draft',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE articles (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('news', 'notice', 'policy')),
    title TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    body_html TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'draft',
    pinned BIGINT NOT NULL DEFAULT 0,
    published_at BIGINT,
    author_id BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX articles_kind ON articles(kind, status, published_at);
