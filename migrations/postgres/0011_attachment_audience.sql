-- Files for some participants (issue 15, rule 5): in a conversation a staff sender may
-- limit an attachment to some participants. An attachment with rows here is seen by
-- those people and its uploader only; to everyone else it does not exist.
CREATE TABLE attachment_audience (
    attachment_id TEXT NOT NULL REFERENCES attachments (id) ON DELETE CASCADE,
    thread_id     TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    person_id     TEXT NOT NULL REFERENCES people (id),
    PRIMARY KEY (attachment_id, person_id)
);
CREATE INDEX attachment_audience_thread ON attachment_audience (thread_id);
