-- Each person's counts per list, kept by triggers in the very transaction that changes
-- participant rows, so that the folder counts cost one index range, not a scan of the
-- person's threads. `list` is a folder ('inbox', 'archive', 'trash', 'removed' or a custom
-- folder's id), 'sent' (threads the person wrote in, not removed) or 'team:<group>'
-- (threads addressed to the person's group, not removed).
CREATE TABLE mailbox_counts (
    person_id TEXT   NOT NULL,
    list      TEXT   NOT NULL,
    total     BIGINT NOT NULL,
    unread    BIGINT NOT NULL,
    PRIMARY KEY (person_id, list)
);

-- No participant row may change between the count below and the triggers' start (another
-- node may be serving while this one migrates).
LOCK TABLE thread_participants IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO mailbox_counts (person_id, list, total, unread)
SELECT person_id, folder, COUNT(*), SUM(unread) FROM thread_participants
GROUP BY person_id, folder;
INSERT INTO mailbox_counts (person_id, list, total, unread)
SELECT person_id, 'sent', COUNT(*), SUM(unread) FROM thread_participants
WHERE has_sent = 1 AND folder <> 'removed' GROUP BY person_id;
INSERT INTO mailbox_counts (person_id, list, total, unread)
SELECT person_id, 'team:' || via_group, COUNT(*), SUM(unread) FROM thread_participants
WHERE via_group IS NOT NULL AND folder <> 'removed' GROUP BY person_id, via_group;

-- The triggers run once per statement over its transition tables: a statement's changes
-- are summed per (person, list), and the counter rows are taken in that order, so that
-- two statements never take the same counters in opposite orders.
CREATE FUNCTION mailbox_counts_inserted() RETURNS trigger AS $$
BEGIN
    INSERT INTO mailbox_counts (person_id, list, total, unread)
    SELECT person_id, list, SUM(total), SUM(unread) FROM (
        SELECT person_id, folder AS list, 1 AS total, unread FROM new_rows
        UNION ALL SELECT person_id, 'sent', 1, unread FROM new_rows
            WHERE has_sent = 1 AND folder <> 'removed'
        UNION ALL SELECT person_id, 'team:' || via_group, 1, unread FROM new_rows
            WHERE via_group IS NOT NULL AND folder <> 'removed'
    ) AS shares
    GROUP BY person_id, list ORDER BY person_id, list
    ON CONFLICT (person_id, list) DO UPDATE
    SET total = mailbox_counts.total + EXCLUDED.total,
        unread = mailbox_counts.unread + EXCLUDED.unread;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION mailbox_counts_deleted() RETURNS trigger AS $$
BEGIN
    INSERT INTO mailbox_counts (person_id, list, total, unread)
    SELECT person_id, list, SUM(total), SUM(unread) FROM (
        SELECT person_id, folder AS list, -1 AS total, -unread AS unread FROM old_rows
        UNION ALL SELECT person_id, 'sent', -1, -unread FROM old_rows
            WHERE has_sent = 1 AND folder <> 'removed'
        UNION ALL SELECT person_id, 'team:' || via_group, -1, -unread FROM old_rows
            WHERE via_group IS NOT NULL AND folder <> 'removed'
    ) AS shares
    GROUP BY person_id, list ORDER BY person_id, list
    ON CONFLICT (person_id, list) DO UPDATE
    SET total = mailbox_counts.total + EXCLUDED.total,
        unread = mailbox_counts.unread + EXCLUDED.unread;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

-- An update takes away the old rows' shares and adds the new ones'; a change that moves
-- no count (a new activity time) touches no counter row.
CREATE FUNCTION mailbox_counts_updated() RETURNS trigger AS $$
BEGIN
    INSERT INTO mailbox_counts (person_id, list, total, unread)
    SELECT person_id, list, SUM(total), SUM(unread) FROM (
        SELECT person_id, folder AS list, 1 AS total, unread FROM new_rows
        UNION ALL SELECT person_id, 'sent', 1, unread FROM new_rows
            WHERE has_sent = 1 AND folder <> 'removed'
        UNION ALL SELECT person_id, 'team:' || via_group, 1, unread FROM new_rows
            WHERE via_group IS NOT NULL AND folder <> 'removed'
        UNION ALL SELECT person_id, folder, -1, -unread FROM old_rows
        UNION ALL SELECT person_id, 'sent', -1, -unread FROM old_rows
            WHERE has_sent = 1 AND folder <> 'removed'
        UNION ALL SELECT person_id, 'team:' || via_group, -1, -unread FROM old_rows
            WHERE via_group IS NOT NULL AND folder <> 'removed'
    ) AS shares
    GROUP BY person_id, list HAVING SUM(total) <> 0 OR SUM(unread) <> 0
    ORDER BY person_id, list
    ON CONFLICT (person_id, list) DO UPDATE
    SET total = mailbox_counts.total + EXCLUDED.total,
        unread = mailbox_counts.unread + EXCLUDED.unread;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER mailbox_counts_insert AFTER INSERT ON thread_participants
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION mailbox_counts_inserted();
CREATE TRIGGER mailbox_counts_delete AFTER DELETE ON thread_participants
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION mailbox_counts_deleted();
CREATE TRIGGER mailbox_counts_update AFTER UPDATE ON thread_participants
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION mailbox_counts_updated();
