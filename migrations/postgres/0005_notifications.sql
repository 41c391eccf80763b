-- Notifications waiting to go out: written in the same transaction as what causes them,
-- sent by a worker with retries. They hold no content: a row says whom to tell what kind
-- of thing, never the message, and links are made (and tokens minted) at sending time.

CREATE TABLE notifications (
    id           TEXT NOT NULL PRIMARY KEY,
    practice_id  TEXT NOT NULL REFERENCES practices (id),
    person_id    TEXT NOT NULL REFERENCES people (id),
    kind         TEXT NOT NULL CHECK (kind IN ('new_message', 'invitation', 'password_reset')),
    channel      TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    -- The message that caused a new-message notification; deleting it cancels this.
    message_id   TEXT,
    created_at   BIGINT NOT NULL,
    -- When it may go out next; a worker sending it moves this forward (a lease).
    due_at       BIGINT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    sent_at      BIGINT,
    cancelled_at BIGINT,
    failed_at    BIGINT,
    last_error   TEXT
);
CREATE INDEX notifications_due ON notifications (due_at)
    WHERE sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL;
CREATE INDEX notifications_person ON notifications (person_id, kind, channel, created_at);
-- At most one waiting per person, kind and channel: concurrent senders coalesce too.
CREATE UNIQUE INDEX notifications_one_open ON notifications (person_id, kind, channel)
    WHERE sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL;
CREATE INDEX notifications_message ON notifications (message_id);
