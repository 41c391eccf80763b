-- Security fixes: an email change waits for confirmation, per-person upload counts, and
-- devices that signed in before (so that guessing from elsewhere cannot lock a person out).

-- A new address, not trusted until confirmed through the link sent to it. Sign-in and
-- password resets keep using `email` until then.
ALTER TABLE people ADD COLUMN pending_email TEXT;

-- Files uploaded per person per hour (fixed windows, `window_start` in ms).
CREATE TABLE upload_counts (
    person_id    TEXT    NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (person_id, window_start)
);

-- A client (browser or API client) that signed in successfully: it keeps its own count of
-- failed sign-ins, apart from the account's. Only the token's hash is stored.
CREATE TABLE trusted_devices (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    person_id  TEXT    NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX trusted_devices_person ON trusted_devices (person_id);
CREATE INDEX trusted_devices_expiry ON trusted_devices (expires_at);

-- Two more kinds of email (an email change's confirmation link, and the notice to the old
-- address), and the address a notification must go to when it is not the person's current
-- one (the notice). SQLite cannot change a CHECK constraint: the table is rebuilt.
CREATE TABLE notifications_new (
    id           TEXT NOT NULL PRIMARY KEY,
    practice_id  TEXT NOT NULL REFERENCES practices (id),
    person_id    TEXT NOT NULL REFERENCES people (id),
    kind         TEXT NOT NULL CHECK (kind IN ('new_message', 'invitation', 'password_reset', 'email_change', 'email_change_notice')),
    channel      TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    message_id   TEXT,
    address      TEXT,
    created_at   INTEGER NOT NULL,
    due_at       INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    sent_at      INTEGER,
    cancelled_at INTEGER,
    failed_at    INTEGER,
    last_error   TEXT
);
INSERT INTO notifications_new (id, practice_id, person_id, kind, channel, message_id, created_at,
                               due_at, attempts, sent_at, cancelled_at, failed_at, last_error)
SELECT id, practice_id, person_id, kind, channel, message_id, created_at, due_at, attempts,
       sent_at, cancelled_at, failed_at, last_error
FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;
CREATE INDEX notifications_due ON notifications (due_at)
    WHERE sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL;
CREATE INDEX notifications_person ON notifications (person_id, kind, channel, created_at);
CREATE UNIQUE INDEX notifications_one_open ON notifications (person_id, kind, channel)
    WHERE sent_at IS NULL AND cancelled_at IS NULL AND failed_at IS NULL;
CREATE INDEX notifications_message ON notifications (message_id);

-- Single-use links for confirming a new email address, each bound to the address it was
-- sent to (a later request for another address does not make this link confirm that one).
CREATE TABLE one_time_tokens_new (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    purpose    TEXT    NOT NULL CHECK (purpose IN ('setup', 'invitation', 'password_reset', 'email_change')),
    person_id  TEXT    REFERENCES people (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    address    TEXT
);
INSERT INTO one_time_tokens_new (token_hash, purpose, person_id, created_at, expires_at, used_at)
SELECT token_hash, purpose, person_id, created_at, expires_at, used_at FROM one_time_tokens;
DROP TABLE one_time_tokens;
ALTER TABLE one_time_tokens_new RENAME TO one_time_tokens;
CREATE INDEX one_time_tokens_person ON one_time_tokens (person_id, purpose);
