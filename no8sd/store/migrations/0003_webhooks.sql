-- Admission webhooks: external services that check (validating) or rewrite (mutating)
-- a resource before a create, update or delete is stored.
-- operations is a JSON array of CREATE/UPDATE/DELETE; NULL type filters match every type.

CREATE TABLE admission_webhooks (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    name                  TEXT NOT NULL UNIQUE,
    webhook_url           TEXT NOT NULL,
    webhook_type          TEXT NOT NULL CHECK (webhook_type IN ('validating', 'mutating')),
    operations            TEXT NOT NULL DEFAULT '[]',
    resource_type_name    TEXT,
    resource_type_version TEXT,
    timeout_seconds       INTEGER NOT NULL DEFAULT 10,
    failure_policy        TEXT NOT NULL DEFAULT 'Fail' CHECK (failure_policy IN ('Fail', 'Ignore')),
    ordering              INTEGER NOT NULL DEFAULT 0,
    created_at            REAL NOT NULL,
    updated_at            REAL NOT NULL
);

-- The admission chain's order: mutating before validating, then by ordering.
CREATE INDEX admission_webhooks_chain ON admission_webhooks (webhook_type, ordering, id);
