-- Each person's counts per list, kept by triggers in the very transaction that changes a
-- participant row, so that the folder counts cost one index range, not a scan of the
-- person's threads. `list` is a folder ('inbox', 'archive', 'trash', 'removed' or a custom
-- folder's id), 'sent' (threads the person wrote in, not removed) or 'team:<group>'
-- (threads addressed to the person's group, not removed).
CREATE TABLE mailbox_counts (
    person_id TEXT    NOT NULL,
    list      TEXT    NOT NULL,
    total     INTEGER NOT NULL,
    unread    INTEGER NOT NULL,
    PRIMARY KEY (person_id, list)
);

INSERT INTO mailbox_counts (person_id, list, total, unread)
SELECT person_id, folder, COUNT(*), SUM(unread) FROM thread_participants
GROUP BY person_id, folder;
INSERT INTO mailbox_counts (person_id, list, total, unread)
SELECT person_id, 'sent', COUNT(*), SUM(unread) FROM thread_participants
WHERE has_sent = 1 AND folder <> 'removed' GROUP BY person_id;
INSERT INTO mailbox_counts (person_id, list, total, unread)
SELECT person_id, 'team:' || via_group, COUNT(*), SUM(unread) FROM thread_participants
WHERE via_group IS NOT NULL AND folder <> 'removed' GROUP BY person_id, via_group;

CREATE TRIGGER mailbox_counts_insert AFTER INSERT ON thread_participants BEGIN
    INSERT INTO mailbox_counts (person_id, list, total, unread)
    VALUES (NEW.person_id, NEW.folder, 1, NEW.unread)
    ON CONFLICT (person_id, list) DO UPDATE
    SET total = total + excluded.total, unread = unread + excluded.unread;
    INSERT INTO mailbox_counts (person_id, list, total, unread)
    SELECT NEW.person_id, 'sent', 1, NEW.unread WHERE NEW.has_sent = 1 AND NEW.folder <> 'removed'
    ON CONFLICT (person_id, list) DO UPDATE
    SET total = total + excluded.total, unread = unread + excluded.unread;
    INSERT INTO mailbox_counts (person_id, list, total, unread)
    SELECT NEW.person_id, 'team:' || NEW.via_group, 1, NEW.unread
    WHERE NEW.via_group IS NOT NULL AND NEW.folder <> 'removed'
    ON CONFLICT (person_id, list) DO UPDATE
    SET total = total + excluded.total, unread = unread + excluded.unread;
END;

CREATE TRIGGER mailbox_counts_delete AFTER DELETE ON thread_participants BEGIN
    UPDATE mailbox_counts SET total = total - 1, unread = unread - OLD.unread
    WHERE person_id = OLD.person_id AND list = OLD.folder;
    UPDATE mailbox_counts SET total = total - 1, unread = unread - OLD.unread
    WHERE person_id = OLD.person_id AND list = 'sent'
    AND OLD.has_sent = 1 AND OLD.folder <> 'removed';
    UPDATE mailbox_counts SET total = total - 1, unread = unread - OLD.unread
    WHERE person_id = OLD.person_id AND list = 'team:' || OLD.via_group
    AND OLD.via_group IS NOT NULL AND OLD.folder <> 'removed';
END;

CREATE TRIGGER mailbox_counts_update
AFTER UPDATE OF folder, unread, has_sent, via_group ON thread_participants BEGIN
    UPDATE mailbox_counts SET total = total - 1, unread = unread - OLD.unread
    WHERE person_id = OLD.person_id AND list = OLD.folder;
    UPDATE mailbox_counts SET total = total - 1, unread = unread - OLD.unread
    WHERE person_id = OLD.person_id AND list = 'sent'
    AND OLD.has_sent = 1 AND OLD.folder <> 'removed';
    UPDATE mailbox_counts SET total = total - 1, unread = unread - OLD.unread
    WHERE person_id = OLD.person_id AND list = 'team:' || OLD.via_group
    AND OLD.via_group IS NOT NULL AND OLD.folder <> 'removed';
    INSERT INTO mailbox_counts (person_id, list, total, unread)
    VALUES (NEW.person_id, NEW.folder, 1, NEW.unread)
    ON CONFLICT (person_id, list) DO UPDATE
    SET total = total + excluded.total, unread = unread + excluded.unread;
    INSERT INTO mailbox_counts (person_id, list, total, unread)
    SELECT NEW.person_id, 'sent', 1, NEW.unread WHERE NEW.has_sent = 1 AND NEW.folder <> 'removed'
    ON CONFLICT (person_id, list) DO UPDATE
    SET total = total + excluded.total, unread = unread + excluded.unread;
    INSERT INTO mailbox_counts (person_id, list, total, unread)
    SELECT NEW.person_id, 'team:' || NEW.via_group, 1, NEW.unread
    WHERE NEW.via_group IS NOT NULL AND NEW.folder <> 'removed'
    ON CONFLICT (person_id, list) DO UPDATE
    SET total = total + excluded.total, unread = unread + excluded.unread;
END;
