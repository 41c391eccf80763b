-- Sign-in throttling counts attempts in one row per (scope, key), incremented atomically
-- before the password is checked, so that parallel attempts cannot all slip under the
-- limit. It replaces the row-per-failure table.

DROP TABLE sign_in_failures;

CREATE TABLE sign_in_attempts (
    scope        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
