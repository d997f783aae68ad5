-- Who asked for work: the principal whose change last made a resource due (a user, an
-- input plugin "input:NAME", a reconciler "reconciler:NAME"), the one a reconcile was
-- handed out for, and, in the history, who triggered each reconcile.
ALTER TABLE resources ADD COLUMN wanted_by TEXT;
ALTER TABLE resources ADD COLUMN claimed_by TEXT;
ALTER TABLE reconciliation_history ADD COLUMN triggered_by TEXT;
