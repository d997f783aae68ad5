-- Remember which resources are handed out to a reconciler right now, so that after a
-- crash or restart those leases can be released at once instead of waiting them out.
ALTER TABLE resources ADD COLUMN leased INTEGER NOT NULL DEFAULT 0;
CREATE INDEX resources_leased ON resources (id) WHERE leased = 1;
