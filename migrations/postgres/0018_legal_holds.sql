-- Legal holds (issue 17): a client's or a thread's data that must be kept. Held data is
-- never purged or permanently deleted; a released hold keeps its row, with who released
-- it and when.
CREATE TABLE legal_holds (
    id          TEXT    NOT NULL PRIMARY KEY,
    practice_id TEXT    NOT NULL REFERENCES practices (id),
    client_id   TEXT    REFERENCES people (id),
    thread_id   TEXT,
    placed_by   TEXT    NOT NULL,
    placed_at   BIGINT  NOT NULL,
    released_by TEXT,
    released_at BIGINT,
    CHECK ((client_id IS NULL) <> (thread_id IS NULL))
);
CREATE INDEX legal_holds_practice ON legal_holds (practice_id, released_at);
CREATE INDEX legal_holds_thread ON legal_holds (thread_id);
CREATE INDEX legal_holds_client ON legal_holds (client_id);
