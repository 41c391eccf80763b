-- Foundation: practices, people, sessions, sign-in throttling, one-time links,
-- the audit log (append-only, hash-chained) and the event log.
-- Times are Unix milliseconds (UTC); flags are 0/1 integers, so that one SQL text
-- and one decoder serve SQLite and PostgreSQL alike.

CREATE TABLE practices (
    id         TEXT    NOT NULL PRIMARY KEY,
    slug       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT practices_slug_key UNIQUE (slug)
);

CREATE TABLE people (
    id            TEXT    NOT NULL PRIMARY KEY,
    practice_id   TEXT    NOT NULL REFERENCES practices (id),
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'provider', 'front_office', 'biller', 'external_agent', 'client')),
    status        TEXT    NOT NULL CHECK (status IN ('invited', 'active', 'inactive', 'disabled')),
    name          TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    email_norm    TEXT    NOT NULL,
    mobile        TEXT,
    consent_email INTEGER NOT NULL DEFAULT 0 CHECK (consent_email IN (0, 1)),
    consent_sms   INTEGER NOT NULL DEFAULT 0 CHECK (consent_sms IN (0, 1)),
    password_hash TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    CONSTRAINT people_practice_email_key UNIQUE (practice_id, email_norm)
);
CREATE INDEX people_practice_name ON people (practice_id, name, id);

CREATE TABLE sessions (
    id           TEXT    NOT NULL PRIMARY KEY,
    token_hash   TEXT    NOT NULL,
    person_id    TEXT    NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    practice_id  TEXT    NOT NULL REFERENCES practices (id),
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX sessions_person ON sessions (person_id);

-- One row per failed sign-in, per scope ('account' = practice + email, 'address' = client IP).
CREATE TABLE sign_in_failures (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT    NOT NULL,
    key   TEXT    NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX sign_in_failures_key ON sign_in_failures (scope, key, at);

-- Single-use links: the first-start setup link and invitations. Only hashes are stored.
CREATE TABLE one_time_tokens (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    purpose    TEXT    NOT NULL CHECK (purpose IN ('setup', 'invitation', 'password_reset')),
    person_id  TEXT    REFERENCES people (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX one_time_tokens_person ON one_time_tokens (person_id, purpose);

CREATE TABLE audit_events (
    seq         INTEGER NOT NULL PRIMARY KEY,
    at          INTEGER NOT NULL,
    practice_id TEXT,
    actor_id    TEXT,
    action      TEXT    NOT NULL,
    object_type TEXT,
    object_id   TEXT,
    outcome     TEXT    NOT NULL,
    ip          TEXT,
    session_ref TEXT,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL
);
CREATE INDEX audit_events_practice ON audit_events (practice_id, seq);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

-- The head of the hash chain; updating it first serialises appends.
CREATE TABLE audit_head (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    practice_id TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    thread_id   TEXT,
    message_id  TEXT,
    actor_id    TEXT,
    at          INTEGER NOT NULL
);
CREATE INDEX events_practice ON events (practice_id, seq);
