-- A round updates its executions in one statement, and a page's rows were
-- written together, so one transaction often updates most rows of a page.
-- An update is in place (HOT) only while the page has room for the new
-- version, and the old ones free no room until that transaction ends. At
-- fillfactor 80 only about 2 in 5 of a burn-down's execution updates were
-- HOT; the rest wrote a new entry into every index of the table. Half of
-- each new page is now left free, room for one new version of every row.
-- The cost is the space: the table takes about twice the pages (rows
-- already written keep their pages).
ALTER TABLE {schema}executions SET (fillfactor = 50);
