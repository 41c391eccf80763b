-- Conversations (issue 15): the kind of a thread, its announcement, scheduled start and
-- completion; replies to a message; reactions; read receipts; internal notes; practice
-- settings; clients who may only reply.

ALTER TABLE threads ADD COLUMN kind TEXT NOT NULL DEFAULT 'message'
    CHECK (kind IN ('message', 'conversation'));
ALTER TABLE threads ADD COLUMN announcement TEXT;
-- Before this time only staff post (conversations).
ALTER TABLE threads ADD COLUMN starts_at INTEGER;
-- Set while the thread is completed (read-only for everyone).
ALTER TABLE threads ADD COLUMN completed_at INTEGER;
ALTER TABLE threads ADD COLUMN completed_by TEXT;

-- The message of the same thread this one answers; cleared if that message is deleted.
ALTER TABLE messages ADD COLUMN in_reply_to TEXT;

CREATE TABLE reactions (
    message_id TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    thread_id  TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    person_id  TEXT    NOT NULL REFERENCES people (id),
    emoji      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, person_id, emoji)
);
CREATE INDEX reactions_thread ON reactions (thread_id);

-- Read receipts: each time a person reads a thread that has messages they have not read,
-- one row says they have read every message up to `through_seq`, at `read_at`.
CREATE TABLE thread_reads (
    thread_id   TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    person_id   TEXT    NOT NULL REFERENCES people (id),
    through_seq INTEGER NOT NULL,
    read_at     INTEGER NOT NULL,
    PRIMARY KEY (thread_id, person_id, through_seq)
);

-- Internal notes: staff participants only, never a client.
CREATE TABLE thread_notes (
    id          TEXT    NOT NULL PRIMARY KEY,
    thread_id   TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    practice_id TEXT    NOT NULL REFERENCES practices (id),
    author_id   TEXT    NOT NULL REFERENCES people (id),
    body        TEXT    NOT NULL,
    body_html   TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX thread_notes_thread ON thread_notes (thread_id, created_at);

-- A practice's own settings; a practice without a row has the defaults.
CREATE TABLE practice_settings (
    practice_id                   TEXT    NOT NULL PRIMARY KEY REFERENCES practices (id),
    -- A limit on clients' message bodies, below the global one; NULL: the global one.
    client_message_max_chars      INTEGER,
    new_clients_can_start_threads INTEGER NOT NULL DEFAULT 1
        CHECK (new_clients_can_start_threads IN (0, 1)),
    conversation_max_participants INTEGER NOT NULL DEFAULT 25,
    updated_at                    INTEGER NOT NULL
);

-- Clients who may only reply (created while `new_clients_can_start_threads` was off),
-- until staff allow them to start threads.
CREATE TABLE reply_only_clients (
    person_id   TEXT    NOT NULL PRIMARY KEY REFERENCES people (id),
    practice_id TEXT    NOT NULL REFERENCES practices (id),
    created_at  INTEGER NOT NULL
);

-- A draft of a new thread keeps the kind and start chosen for it.
ALTER TABLE drafts ADD COLUMN kind TEXT NOT NULL DEFAULT 'message'
    CHECK (kind IN ('message', 'conversation'));
ALTER TABLE drafts ADD COLUMN starts_at INTEGER;
