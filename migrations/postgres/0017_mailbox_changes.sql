-- What changed for whom: one row per person an event concerns, written with the event in
-- the same transaction. `GET /changes` and the live streams read it; nothing here holds
-- content (a thread id, what happened to it for this person, and whether their folder
-- counts or drafts changed).
CREATE TABLE mailbox_changes (
    seq           BIGINT  NOT NULL,
    person_id     TEXT    NOT NULL,
    thread_id     TEXT,
    -- created, updated or destroyed (for this person); NULL when no thread is concerned
    thread_change TEXT,
    folders       BIGINT  NOT NULL DEFAULT 0,
    drafts        BIGINT  NOT NULL DEFAULT 0,
    at            BIGINT  NOT NULL,
    PRIMARY KEY (person_id, seq)
);
CREATE INDEX mailbox_changes_seq ON mailbox_changes (seq);

-- How far back a log can still be read: states before `seq` answer 410.
CREATE TABLE log_horizons (
    name TEXT PRIMARY KEY,
    seq  BIGINT NOT NULL
);

-- Work that one node of a cluster does at a time (the janitor): whoever holds the lease
-- until `until` (Unix ms).
CREATE TABLE leases (
    name   TEXT    PRIMARY KEY,
    holder TEXT    NOT NULL,
    until  BIGINT NOT NULL
);
