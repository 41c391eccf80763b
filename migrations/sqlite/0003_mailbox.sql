-- The mailbox: threads, their participants (each with their own folder and read state),
-- messages, custom folders, drafts and idempotency keys for sends.

CREATE TABLE threads (
    id               TEXT    NOT NULL PRIMARY KEY,
    practice_id      TEXT    NOT NULL REFERENCES practices (id),
    subject          TEXT    NOT NULL,
    started_by       TEXT    NOT NULL REFERENCES people (id),
    -- Clients among the participants; fixed when the thread is composed.
    client_count     INTEGER NOT NULL,
    -- The staff groups the thread was addressed to, space-separated (e.g. 'billers').
    groups           TEXT    NOT NULL DEFAULT '',
    message_count    INTEGER NOT NULL DEFAULT 0,
    next_seq         INTEGER NOT NULL DEFAULT 0,
    -- Plain text of the latest message, shortened, for lists.
    preview          TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    last_activity_at INTEGER NOT NULL
);

CREATE TABLE thread_participants (
    thread_id        TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    person_id        TEXT    NOT NULL REFERENCES people (id),
    practice_id      TEXT    NOT NULL REFERENCES practices (id),
    -- The staff group through which the person was addressed, if any (team folders).
    via_group        TEXT,
    -- 'inbox', 'archive', 'trash', 'removed' (trash emptied) or a custom folder's id.
    folder           TEXT    NOT NULL,
    unread           INTEGER NOT NULL CHECK (unread IN (0, 1)),
    has_sent         INTEGER NOT NULL DEFAULT 0 CHECK (has_sent IN (0, 1)),
    -- A copy of the thread's, so that a folder lists from this index alone.
    last_activity_at INTEGER NOT NULL,
    PRIMARY KEY (thread_id, person_id)
);
-- Each list reads one index in order; the trailing columns make counts index-only too.
CREATE INDEX participants_folder ON thread_participants (person_id, folder, last_activity_at, thread_id, unread);
CREATE INDEX participants_sent ON thread_participants (person_id, has_sent, last_activity_at, thread_id, folder, unread);
CREATE INDEX participants_team ON thread_participants (person_id, via_group, last_activity_at, thread_id, folder, unread);

CREATE TABLE messages (
    id          TEXT    NOT NULL PRIMARY KEY,
    thread_id   TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    practice_id TEXT    NOT NULL REFERENCES practices (id),
    sender_id   TEXT    NOT NULL REFERENCES people (id),
    seq         INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    body_html   TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    CONSTRAINT messages_thread_seq_key UNIQUE (thread_id, seq)
);

CREATE TABLE folders (
    id          TEXT    NOT NULL PRIMARY KEY,
    practice_id TEXT    NOT NULL REFERENCES practices (id),
    person_id   TEXT    NOT NULL REFERENCES people (id),
    name        TEXT    NOT NULL,
    name_norm   TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    CONSTRAINT folders_person_name_key UNIQUE (person_id, name_norm)
);

CREATE TABLE drafts (
    id             TEXT    NOT NULL PRIMARY KEY,
    practice_id    TEXT    NOT NULL REFERENCES practices (id),
    person_id      TEXT    NOT NULL REFERENCES people (id),
    -- Set for a reply draft.
    thread_id      TEXT    REFERENCES threads (id) ON DELETE CASCADE,
    recipients     TEXT    NOT NULL DEFAULT '[]',
    subject        TEXT    NOT NULL DEFAULT '',
    body           TEXT    NOT NULL DEFAULT '',
    attachment_ids TEXT    NOT NULL DEFAULT '[]',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX drafts_person ON drafts (person_id, updated_at);
CREATE INDEX drafts_thread ON drafts (thread_id);

CREATE TABLE idempotency_keys (
    person_id    TEXT    NOT NULL REFERENCES people (id),
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    thread_id    TEXT    NOT NULL,
    message_id   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (person_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
