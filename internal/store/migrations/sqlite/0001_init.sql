CREATE TABLE executions (
    id               TEXT PRIMARY KEY,
    workflow_name    TEXT NOT NULL,
    workflow_version TEXT NOT NULL,
    status           TEXT NOT NULL,
    input            TEXT NOT NULL,
    output           TEXT,
    error            TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    started_at       INTEGER NOT NULL DEFAULT 0,
    completed_at     INTEGER NOT NULL DEFAULT 0,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX executions_workflow_idx ON executions (workflow_name, id);
CREATE INDEX executions_status_idx ON executions (status, id);

CREATE TABLE tasks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id   TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    workflow_name  TEXT NOT NULL,
    name           TEXT NOT NULL,
    deps           TEXT NOT NULL,
    status         TEXT NOT NULL,
    attempt        INTEGER NOT NULL DEFAULT 0,
    ready_at       INTEGER NOT NULL DEFAULT 0,
    context        TEXT,
    error          TEXT NOT NULL DEFAULT '',
    claimed_by     TEXT NOT NULL DEFAULT '',
    heartbeat_at   INTEGER NOT NULL DEFAULT 0,
    recovery_count INTEGER NOT NULL DEFAULT 0,
    started_at     INTEGER NOT NULL DEFAULT 0,
    completed_at   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (execution_id, name)
);
CREATE INDEX tasks_ready_idx ON tasks (ready_at, id) WHERE status = 'Ready';
CREATE INDEX tasks_running_idx ON tasks (heartbeat_at) WHERE status = 'Running';

CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    task_name    TEXT NOT NULL DEFAULT '',
    type         TEXT NOT NULL,
    attempt      INTEGER NOT NULL DEFAULT 0,
    message      TEXT NOT NULL DEFAULT '',
    worker       TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL
);
CREATE INDEX events_execution_idx ON events (execution_id, id);
