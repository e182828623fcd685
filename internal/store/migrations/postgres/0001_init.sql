CREATE TABLE {schema}executions (
    id               uuid PRIMARY KEY,
    workflow_name    text NOT NULL,
    workflow_version text NOT NULL,
    status           text NOT NULL,
    input            text NOT NULL,
    output           text,
    error            text NOT NULL DEFAULT '',
    created_at       bigint NOT NULL,
    started_at       bigint NOT NULL DEFAULT 0,
    completed_at     bigint NOT NULL DEFAULT 0,
    updated_at       bigint NOT NULL
);
CREATE INDEX executions_workflow_idx ON {schema}executions (workflow_name, id);
CREATE INDEX executions_status_idx ON {schema}executions (status, id);

CREATE TABLE {schema}tasks (
    id             bigserial PRIMARY KEY,
    execution_id   uuid NOT NULL REFERENCES {schema}executions (id) ON DELETE CASCADE,
    workflow_name  text NOT NULL,
    name           text NOT NULL,
    deps           text NOT NULL,
    status         text NOT NULL,
    attempt        integer NOT NULL DEFAULT 0,
    ready_at       bigint NOT NULL DEFAULT 0,
    context        text,
    error          text NOT NULL DEFAULT '',
    claimed_by     text NOT NULL DEFAULT '',
    heartbeat_at   bigint NOT NULL DEFAULT 0,
    recovery_count integer NOT NULL DEFAULT 0,
    started_at     bigint NOT NULL DEFAULT 0,
    completed_at   bigint NOT NULL DEFAULT 0,
    UNIQUE (execution_id, name)
);
CREATE INDEX tasks_ready_idx ON {schema}tasks (ready_at, id) WHERE status = 'Ready';
CREATE INDEX tasks_running_idx ON {schema}tasks (heartbeat_at) WHERE status = 'Running';

CREATE TABLE {schema}events (
    id           bigserial PRIMARY KEY,
    execution_id uuid NOT NULL,
    task_name    text NOT NULL DEFAULT '',
    type         text NOT NULL,
    attempt      integer NOT NULL DEFAULT 0,
    message      text NOT NULL DEFAULT '',
    worker       text NOT NULL DEFAULT '',
    created_at   bigint NOT NULL
);
CREATE INDEX events_execution_idx ON {schema}events (execution_id, id);
