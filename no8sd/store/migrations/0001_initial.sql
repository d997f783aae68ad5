-- Resource types, resources, reconciliation history and the event log.
-- Times are Unix seconds (REAL); JSON columns are TEXT holding JSON.

CREATE TABLE resource_types (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    schema      TEXT NOT NULL,
    description TEXT,
    status      TEXT NOT NULL DEFAULT 'active',
    metadata    TEXT NOT NULL DEFAULT '{}',
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    UNIQUE (name, version)
);

CREATE TABLE resources (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    name                  TEXT NOT NULL,
    resource_type_id      INTEGER NOT NULL REFERENCES resource_types (id),
    resource_type_name    TEXT NOT NULL,
    resource_type_version TEXT NOT NULL,
    action_plugin         TEXT NOT NULL DEFAULT '',
    spec                  TEXT NOT NULL DEFAULT '{}',
    plugin_config         TEXT NOT NULL DEFAULT '{}',
    metadata              TEXT NOT NULL DEFAULT '{}',
    outputs               TEXT NOT NULL DEFAULT '{}',
    spec_hash             TEXT NOT NULL,
    status                TEXT NOT NULL DEFAULT 'pending',
    status_message        TEXT,
    generation            INTEGER NOT NULL DEFAULT 1,
    observed_generation   INTEGER NOT NULL DEFAULT 0,
    conditions            TEXT NOT NULL DEFAULT '[]',
    finalizers            TEXT NOT NULL DEFAULT '[]',
    retry_count           INTEGER NOT NULL DEFAULT 0,
    -- Scheduling: NULL = nothing due. due_class 0 = fresh intent, 1 = routine re-check.
    next_reconcile_time   REAL,
    due_class             INTEGER NOT NULL DEFAULT 0,
    -- wanted_seq grows with every request for work; claimed_seq is its value when the
    -- resource was last handed to its reconciler. wanted > claimed = work arrived mid-reconcile.
    wanted_seq            INTEGER NOT NULL DEFAULT 1,
    claimed_seq           INTEGER NOT NULL DEFAULT 0,
    claimed_generation    INTEGER,
    claim_reason          TEXT,
    last_reconcile_time   REAL,
    created_at            REAL NOT NULL,
    updated_at            REAL NOT NULL,
    deleted_at            REAL,
    UNIQUE (resource_type_name, name)
);

-- The due-work query: per type, urgent first, oldest due first. Never a table scan.
CREATE INDEX resources_due ON resources (resource_type_name, due_class, next_reconcile_time)
    WHERE next_reconcile_time IS NOT NULL;
CREATE INDEX resources_by_type ON resources (resource_type_name, resource_type_version, id);
CREATE INDEX resources_by_status ON resources (status, id);
CREATE INDEX resources_by_type_id ON resources (resource_type_id);

CREATE TABLE reconciliation_history (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_id       INTEGER NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    generation        INTEGER NOT NULL,
    success           INTEGER NOT NULL,
    phase             TEXT NOT NULL,
    message           TEXT,
    error_message     TEXT,
    resources_created INTEGER NOT NULL DEFAULT 0,
    resources_updated INTEGER NOT NULL DEFAULT 0,
    resources_deleted INTEGER NOT NULL DEFAULT 0,
    duration_seconds  REAL,
    trigger_reason    TEXT,
    drift_detected    INTEGER NOT NULL DEFAULT 0,
    reconcile_time    REAL NOT NULL
);
CREATE INDEX history_by_resource ON reconciliation_history (resource_id, id);

-- The event log: the id is the SSE event id. AUTOINCREMENT so ids never repeat,
-- even after pruning, and a resume point always means the same event.
CREATE TABLE events (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    ts                    REAL NOT NULL,
    event_type            TEXT NOT NULL,
    resource_id           INTEGER NOT NULL,
    resource_type_name    TEXT NOT NULL,
    resource_type_version TEXT NOT NULL,
    data                  TEXT NOT NULL
);
CREATE INDEX events_by_resource ON events (resource_id, id);
CREATE INDEX events_by_ts ON events (ts);
