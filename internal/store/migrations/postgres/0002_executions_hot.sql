-- An execution's row changes status two or three times in its life
-- (Pending, Running, an end). With an index on status, each of those
-- updates wrote a new entry into every index of the table; without one,
-- PostgreSQL updates the row in place on its page (a HOT update), which
-- the free space left by a lower fillfactor makes room for. Listing by
-- the rare statuses an operator looks for keeps an index of its own,
-- keyed on a column that a plain Pending -> Running -> Completed life
-- never changes.
ALTER TABLE {schema}executions ADD COLUMN exceptional boolean
    GENERATED ALWAYS AS (status IN ('Failed', 'Cancelled', 'Paused')) STORED;
DROP INDEX {schema}executions_status_idx;
CREATE INDEX executions_exceptional_idx ON {schema}executions (id) WHERE exceptional;
ALTER TABLE {schema}executions SET (fillfactor = 80);
