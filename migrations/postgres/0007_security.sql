-- Security fixes: an email change waits for confirmation, per-person upload counts, and
-- devices that signed in before (so that guessing from elsewhere cannot lock a person out).

-- A new address, not trusted until confirmed through the link sent to it. Sign-in and
-- password resets keep using `email` until then.
ALTER TABLE people ADD COLUMN pending_email TEXT;

-- Files uploaded per person per hour (fixed windows, `window_start` in ms).
CREATE TABLE upload_counts (
    person_id    TEXT    NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    window_start BIGINT  NOT NULL,
    count        BIGINT  NOT NULL,
    PRIMARY KEY (person_id, window_start)
);

-- A client (browser or API client) that signed in successfully: it keeps its own count of
-- failed sign-ins, apart from the account's. Only the token's hash is stored.
CREATE TABLE trusted_devices (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    person_id  TEXT    NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX trusted_devices_person ON trusted_devices (person_id);
CREATE INDEX trusted_devices_expiry ON trusted_devices (expires_at);

-- Two more kinds of email (an email change's confirmation link, and the notice to the old
-- address), and the address a notification must go to when it is not the person's current
-- one (the notice).
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('new_message', 'invitation', 'password_reset', 'email_change', 'email_change_notice'));
ALTER TABLE notifications ADD COLUMN address TEXT;

-- Single-use links for confirming a new email address, each bound to the address it was
-- sent to (a later request for another address does not make this link confirm that one).
ALTER TABLE one_time_tokens ADD COLUMN address TEXT;
ALTER TABLE one_time_tokens DROP CONSTRAINT one_time_tokens_purpose_check;
ALTER TABLE one_time_tokens ADD CONSTRAINT one_time_tokens_purpose_check
    CHECK (purpose IN ('setup', 'invitation', 'password_reset', 'email_change'));
