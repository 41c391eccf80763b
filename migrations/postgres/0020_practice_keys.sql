-- Encryption at rest (issue 17): each practice's data keys, one row per generation, each
-- sealed (wrapped) under the key-encryption key named by kek_id, which never enters the
-- database. Content sealed with a generation names it, so generations live side by side
-- while content is re-encrypted.
CREATE TABLE practice_keys (
    practice_id TEXT    NOT NULL REFERENCES practices (id),
    generation  BIGINT NOT NULL,
    kek_id      TEXT    NOT NULL,
    wrapped     TEXT    NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (practice_id, generation)
);

-- How far sealing the content already stored has come: per table, the last row id done,
-- and 'done' once all of it is sealed. Sealing resumes from here after an interruption.
CREATE TABLE sealing_progress (
    name    TEXT NOT NULL PRIMARY KEY,
    last_id TEXT NOT NULL,
    done    BIGINT NOT NULL DEFAULT 0 CHECK (done IN (0, 1))
);

-- A chart note's versions never change, except once: while the content stored before
-- encryption is sealed in place (same note, number, author and time; new content only).
CREATE FUNCTION chart_note_versions_keep() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.note_id = OLD.note_id AND NEW.version = OLD.version
       AND NEW.author_id = OLD.author_id AND NEW.created_at = OLD.created_at
       AND EXISTS (SELECT 1 FROM sealing_progress
                   WHERE name = 'chart_note_versions' AND done = 0) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'chart notes are never deleted, and their versions never changed';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER chart_note_versions_no_change ON chart_note_versions;
CREATE TRIGGER chart_note_versions_no_change BEFORE UPDATE OR DELETE ON chart_note_versions
FOR EACH ROW EXECUTE FUNCTION chart_note_versions_keep();

-- With encryption, attachment bytes are kept under a keyed hash of their SHA-256 (in
-- attachments.sha256 and blobs.sha256), sealed; the SHA-256 itself is kept here, sealed.
-- NULL: bytes stored before encryption, in plain text under their SHA-256.
ALTER TABLE attachments ADD COLUMN content_sha256 TEXT;
