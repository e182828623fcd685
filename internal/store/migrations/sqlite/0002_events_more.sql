-- An events row may hold several events of one execution, written in one
-- transaction: the first in the row's columns, the others in more, as a
-- JSON array (see the store's events.go). NULL: the row holds one event.
ALTER TABLE events ADD COLUMN more TEXT;
