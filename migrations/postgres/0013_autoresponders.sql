-- Autoresponders (issue 15, rule 13): a staff member's text and the periods it answers in.
CREATE TABLE autoresponders (
    person_id   TEXT    NOT NULL PRIMARY KEY REFERENCES people (id),
    practice_id TEXT    NOT NULL REFERENCES practices (id),
    text        TEXT    NOT NULL,
    -- JSON: [{"from": ms, "until": ms or null}, …]
    periods     TEXT    NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- An automatic reply is marked as such: it never answers, nor is answered by, another.
ALTER TABLE messages ADD COLUMN automatic BIGINT NOT NULL DEFAULT 0 CHECK (automatic IN (0, 1));

-- The last automatic reply per thread, staff member and client (one per 30 minutes).
CREATE TABLE auto_replies (
    thread_id    TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    responder_id TEXT NOT NULL REFERENCES people (id),
    client_id    TEXT NOT NULL REFERENCES people (id),
    sent_at      BIGINT NOT NULL,
    PRIMARY KEY (thread_id, responder_id, client_id)
);
