-- Chart notes: per client, amended but never deleted; every version is kept.

CREATE TABLE chart_notes (
    id               TEXT   NOT NULL PRIMARY KEY,
    practice_id      TEXT   NOT NULL REFERENCES practices (id),
    client_id        TEXT   NOT NULL REFERENCES people (id),
    author_id        TEXT   NOT NULL REFERENCES people (id),
    -- The thread the note was taken from; it may have been deleted since.
    source_thread_id TEXT,
    version          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX chart_notes_client ON chart_notes (client_id, created_at, id);

CREATE TABLE chart_note_versions (
    note_id    TEXT   NOT NULL REFERENCES chart_notes (id),
    version    BIGINT NOT NULL,
    content    TEXT   NOT NULL,
    author_id  TEXT   NOT NULL REFERENCES people (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (note_id, version)
);

CREATE FUNCTION chart_notes_keep() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'chart notes are never deleted, and their versions never changed';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER chart_notes_no_delete BEFORE DELETE ON chart_notes
FOR EACH ROW EXECUTE FUNCTION chart_notes_keep();
CREATE TRIGGER chart_note_versions_no_change BEFORE UPDATE OR DELETE ON chart_note_versions
FOR EACH ROW EXECUTE FUNCTION chart_notes_keep();
