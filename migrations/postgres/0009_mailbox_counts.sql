-- Each person's counts per list, kept by a trigger in the very transaction that changes a
-- participant row, so that the folder counts cost one index range, not a scan of the
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

INSERT INTO mailbox_counts (person_id, list, total, unread)
SELECT person_id, folder, COUNT(*), SUM(unread) FROM thread_participants
GROUP BY person_id, folder;
INSERT INTO mailbox_counts (person_id, list, total, unread)
SELECT person_id, 'sent', COUNT(*), SUM(unread) FROM thread_participants
WHERE has_sent = 1 AND folder <> 'removed' GROUP BY person_id;
INSERT INTO mailbox_counts (person_id, list, total, unread)
SELECT person_id, 'team:' || via_group, COUNT(*), SUM(unread) FROM thread_participants
WHERE via_group IS NOT NULL AND folder <> 'removed' GROUP BY person_id, via_group;

CREATE FUNCTION mailbox_counts_add(p TEXT, l TEXT, t BIGINT, u BIGINT) RETURNS void AS $$
    INSERT INTO mailbox_counts (person_id, list, total, unread) VALUES (p, l, t, u)
    ON CONFLICT (person_id, list) DO UPDATE
    SET total = mailbox_counts.total + EXCLUDED.total,
        unread = mailbox_counts.unread + EXCLUDED.unread;
$$ LANGUAGE sql;

-- Adds (sign 1) or takes away (sign -1) one participant row's share of the counts.
CREATE FUNCTION mailbox_counts_apply(r thread_participants, sign BIGINT) RETURNS void AS $$
BEGIN
    PERFORM mailbox_counts_add(r.person_id, r.folder, sign, sign * r.unread);
    IF r.has_sent = 1 AND r.folder <> 'removed' THEN
        PERFORM mailbox_counts_add(r.person_id, 'sent', sign, sign * r.unread);
    END IF;
    IF r.via_group IS NOT NULL AND r.folder <> 'removed' THEN
        PERFORM mailbox_counts_add(r.person_id, 'team:' || r.via_group, sign, sign * r.unread);
    END IF;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION mailbox_counts_trigger() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM mailbox_counts_apply(OLD, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM mailbox_counts_apply(NEW, 1);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER mailbox_counts
AFTER INSERT OR DELETE OR UPDATE OF folder, unread, has_sent, via_group ON thread_participants
FOR EACH ROW EXECUTE FUNCTION mailbox_counts_trigger();
