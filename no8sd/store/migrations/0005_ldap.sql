-- Directory (LDAP) users: where each one is in the directory, and whether the last sync
-- suspended it because it had vanished from there (so its return reactivates it, while
-- a suspension an admin made stays).
ALTER TABLE users ADD COLUMN ldap_dn TEXT;
ALTER TABLE users ADD COLUMN ldap_vanished_at REAL;
