-- Users, custom roles and their permissions, and bearer tokens.
-- Times are Unix seconds (REAL). Tokens are stored only as SHA-256 hex digests.

CREATE TABLE custom_roles (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT NOT NULL UNIQUE,
    description        TEXT,
    system_permissions TEXT NOT NULL DEFAULT '[]',
    created_at         REAL NOT NULL,
    updated_at         REAL NOT NULL
);

CREATE TABLE custom_role_permissions (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    role_id               INTEGER NOT NULL REFERENCES custom_roles (id) ON DELETE CASCADE,
    resource_type_name    TEXT NOT NULL DEFAULT '*',
    resource_type_version TEXT NOT NULL DEFAULT '*',
    operations            TEXT NOT NULL DEFAULT '[]',
    created_at            REAL NOT NULL,
    UNIQUE (role_id, resource_type_name, resource_type_version)
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT NOT NULL UNIQUE,
    email          TEXT,
    display_name   TEXT,
    source         TEXT NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'ldap')),
    password_hash  TEXT,
    is_admin       INTEGER NOT NULL DEFAULT 0,
    status         TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    custom_role_id INTEGER REFERENCES custom_roles (id) ON DELETE SET NULL,
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL,
    last_login_at  REAL,
    last_synced_at REAL
);
CREATE INDEX users_by_role ON users (custom_role_id);

-- kind 'login': issued by POST /auth/login, expires. kind 'api': named, made by an admin,
-- expires only if asked to. A revoked token stays listed (revoked = 1) for the audit trail.
CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('login', 'api')),
    name         TEXT,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   REAL NOT NULL,
    expires_at   REAL,
    revoked      INTEGER NOT NULL DEFAULT 0,
    revoked_at   REAL,
    last_used_at REAL
);
CREATE INDEX tokens_by_user ON tokens (user_id, kind, id);
CREATE INDEX tokens_login_expiry ON tokens (expires_at) WHERE kind = 'login';
CREATE UNIQUE INDEX tokens_api_name ON tokens (user_id, name) WHERE kind = 'api' AND revoked = 0;
