-- The worker that started an execution (see the PostgreSQL migration 0006).
-- Empty in rows written before it. SQLite adds a column with a constant
-- default by changing the schema only, without rewriting the table.
ALTER TABLE executions ADD COLUMN started_by TEXT NOT NULL DEFAULT '';
