-- Attachments: stored bytes are content-addressed (one `blobs` row per SHA-256), and each
-- upload is an `attachments` row pointing at one. An upload is pending (no message) until
-- a message uses it; a draft may hold it meanwhile.

CREATE TABLE blobs (
    sha256     TEXT    NOT NULL PRIMARY KEY,
    size       INTEGER NOT NULL,
    -- 1 once nothing references the blob: its bytes are about to be removed. A new upload
    -- of the same content sets it back to 0 (under the row's lock) and stores them again.
    deleting   INTEGER NOT NULL DEFAULT 0 CHECK (deleting IN (0, 1)),
    created_at INTEGER NOT NULL
);
CREATE INDEX blobs_deleting ON blobs (deleting, sha256);

CREATE TABLE attachments (
    id            TEXT    NOT NULL PRIMARY KEY,
    practice_id   TEXT    NOT NULL REFERENCES practices (id),
    uploader_id   TEXT    NOT NULL REFERENCES people (id),
    sha256        TEXT    NOT NULL REFERENCES blobs (sha256),
    -- For display only, cleaned at upload; never used as a path.
    name          TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    content_type  TEXT    NOT NULL,
    -- Set together when a message carries the attachment; NULL while pending.
    message_id    TEXT    REFERENCES messages (id),
    thread_id     TEXT    REFERENCES threads (id),
    -- The draft holding a pending attachment, if any.
    draft_id      TEXT,
    -- Order among a message's attachments.
    position      INTEGER NOT NULL DEFAULT 0,
    -- When the attachment last became unused; a pending one unused for a day is removed.
    pending_since INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX attachments_message ON attachments (message_id, position);
CREATE INDEX attachments_thread ON attachments (thread_id);
CREATE INDEX attachments_sha256 ON attachments (sha256);
CREATE INDEX attachments_draft ON attachments (draft_id);
CREATE INDEX attachments_pending ON attachments (pending_since) WHERE message_id IS NULL AND draft_id IS NULL;
