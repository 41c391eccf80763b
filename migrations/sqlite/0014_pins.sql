-- Pins (issue 15, rule 10): each person pins threads for themselves (listed first), and
-- staff pin messages inside a thread for everyone in it.
CREATE TABLE thread_pins (
    person_id TEXT NOT NULL REFERENCES people (id),
    thread_id TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    pinned_at INTEGER NOT NULL,
    PRIMARY KEY (person_id, thread_id)
);

ALTER TABLE messages ADD COLUMN pinned_at INTEGER;
ALTER TABLE messages ADD COLUMN pinned_by TEXT;
