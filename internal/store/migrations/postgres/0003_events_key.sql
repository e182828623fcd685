-- Events are read by execution, in id order, and by nothing else: one
-- index on (execution_id, id), as the primary key, serves those reads, so
-- each event row writes one index entry instead of two.
ALTER TABLE {schema}events DROP CONSTRAINT events_pkey;
ALTER TABLE {schema}events ADD PRIMARY KEY (execution_id, id);
DROP INDEX {schema}events_execution_idx;
