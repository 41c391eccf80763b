-- Chart notes: per client, amended but never deleted; every version is kept.

CREATE TABLE chart_notes (
    id               TEXT    NOT NULL PRIMARY KEY,
    practice_id      TEXT    NOT NULL REFERENCES practices (id),
    client_id        TEXT    NOT NULL REFERENCES people (id),
    author_id        TEXT    NOT NULL REFERENCES people (id),
    -- The thread the note was taken from; it may have been deleted since.
    source_thread_id TEXT,
    version          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX chart_notes_client ON chart_notes (client_id, created_at, id);

CREATE TABLE chart_note_versions (
    note_id    TEXT    NOT NULL REFERENCES chart_notes (id),
    version    INTEGER NOT NULL,
    content    TEXT    NOT NULL,
    author_id  TEXT    NOT NULL REFERENCES people (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (note_id, version)
);

CREATE TRIGGER chart_notes_no_delete BEFORE DELETE ON chart_notes
BEGIN
    SELECT RAISE(ABORT, 'chart notes are never deleted');
END;
CREATE TRIGGER chart_note_versions_no_update BEFORE UPDATE ON chart_note_versions
BEGIN
    SELECT RAISE(ABORT, 'chart note versions are never changed');
END;
CREATE TRIGGER chart_note_versions_no_delete BEFORE DELETE ON chart_note_versions
BEGIN
    SELECT RAISE(ABORT, 'chart note versions are never changed');
END;
