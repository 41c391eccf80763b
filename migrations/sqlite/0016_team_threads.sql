-- Team folders as shared inboxes (issue 15, rule 17): a message thread addressed to a
-- staff group belongs to the group. Every current member has a participant row for it
-- (`via_group`, added when they join the group, removed when they leave it); the team's
-- shared state is here: whether the team is done with it and who of the team handles it.
CREATE TABLE team_threads (
    thread_id   TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    group_name  TEXT    NOT NULL,
    practice_id TEXT    NOT NULL REFERENCES practices (id),
    done        BIGINT  NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    assignee_id TEXT    REFERENCES people (id),
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (thread_id, group_name)
);
-- A member joining reads the group's threads; unassigning a leaver reads their threads.
CREATE INDEX team_threads_group ON team_threads (practice_id, group_name);
CREATE INDEX team_threads_assignee ON team_threads (assignee_id);

-- Whether the person was named in `to`, wrote, or was shared in (1), rather than reached
-- only through a group (0): leaving the group takes away only the latter. Rows from
-- before cannot tell, and count as reached through the group when they carry one.
ALTER TABLE thread_participants ADD COLUMN direct BIGINT NOT NULL DEFAULT 1 CHECK (direct IN (0, 1));
UPDATE thread_participants SET direct = 0 WHERE via_group IS NOT NULL AND has_sent = 0;

-- The message threads addressed to each group so far.
INSERT INTO team_threads (thread_id, group_name, practice_id, updated_at)
SELECT t.id, g.name, t.practice_id, t.last_activity_at
FROM threads t
JOIN (SELECT 'providers' AS name UNION ALL SELECT 'front_office' UNION ALL SELECT 'billers'
      UNION ALL SELECT 'external_agents') g
  ON (' ' || t.groups || ' ') LIKE ('% ' || g.name || ' %')
WHERE t.kind = 'message';

-- Bring mailboxes in line with today's membership. The role each group reaches:
CREATE TEMPORARY TABLE group_roles (group_name TEXT PRIMARY KEY, role TEXT NOT NULL);
INSERT INTO group_roles (group_name, role) VALUES ('providers', 'provider'),
    ('front_office', 'front_office'), ('billers', 'biller'),
    ('external_agents', 'external_agent');

-- Someone no longer in a group loses its threads they were reached through only; the
-- ones they wrote in stay, as ordinary threads of theirs.
DELETE FROM thread_pins WHERE EXISTS (
    SELECT 1 FROM thread_participants p
    JOIN team_threads tt ON tt.thread_id = p.thread_id AND tt.group_name = p.via_group
    JOIN group_roles gr ON gr.group_name = p.via_group
    JOIN people pe ON pe.id = p.person_id
    WHERE p.thread_id = thread_pins.thread_id AND p.person_id = thread_pins.person_id
      AND p.direct = 0 AND p.has_sent = 0 AND pe.role <> gr.role);
DELETE FROM thread_participants WHERE direct = 0 AND has_sent = 0 AND EXISTS (
    SELECT 1 FROM team_threads tt
    JOIN group_roles gr ON gr.group_name = tt.group_name
    JOIN people pe ON pe.id = thread_participants.person_id
    WHERE tt.thread_id = thread_participants.thread_id
      AND tt.group_name = thread_participants.via_group AND pe.role <> gr.role);
UPDATE thread_participants SET via_group = NULL WHERE EXISTS (
    SELECT 1 FROM team_threads tt
    JOIN group_roles gr ON gr.group_name = tt.group_name
    JOIN people pe ON pe.id = thread_participants.person_id
    WHERE tt.thread_id = thread_participants.thread_id
      AND tt.group_name = thread_participants.via_group AND pe.role <> gr.role);

-- An active member who joined after a thread was sent gets it, with its history, read in
-- the Archive (it was the team's before they came); the search index learns its reader.
INSERT INTO events (practice_id, kind, thread_id, message_id, actor_id, at)
SELECT tt.practice_id, 'thread_shared', tt.thread_id, NULL, NULL, MAX(t.last_activity_at)
FROM team_threads tt
JOIN threads t ON t.id = tt.thread_id
JOIN group_roles gr ON gr.group_name = tt.group_name
JOIN people pe ON pe.practice_id = tt.practice_id AND pe.role = gr.role AND pe.status = 'active'
WHERE NOT EXISTS (SELECT 1 FROM thread_participants x
                  WHERE x.thread_id = tt.thread_id AND x.person_id = pe.id)
GROUP BY tt.practice_id, tt.thread_id;
UPDATE thread_participants SET via_group = (
    SELECT tt.group_name FROM team_threads tt
    JOIN group_roles gr ON gr.group_name = tt.group_name
    JOIN people pe ON pe.id = thread_participants.person_id
    WHERE tt.thread_id = thread_participants.thread_id AND pe.role = gr.role
      AND pe.status = 'active')
WHERE via_group IS NULL AND EXISTS (
    SELECT 1 FROM team_threads tt
    JOIN group_roles gr ON gr.group_name = tt.group_name
    JOIN people pe ON pe.id = thread_participants.person_id
    WHERE tt.thread_id = thread_participants.thread_id AND pe.role = gr.role
      AND pe.status = 'active');
INSERT INTO thread_participants (thread_id, person_id, practice_id, via_group, folder, unread,
    has_sent, last_activity_at, direct)
SELECT tt.thread_id, pe.id, tt.practice_id, tt.group_name, 'archive', 0, 0,
    t.last_activity_at, 0
FROM team_threads tt
JOIN threads t ON t.id = tt.thread_id
JOIN group_roles gr ON gr.group_name = tt.group_name
JOIN people pe ON pe.practice_id = tt.practice_id AND pe.role = gr.role AND pe.status = 'active'
WHERE NOT EXISTS (SELECT 1 FROM thread_participants x
                  WHERE x.thread_id = tt.thread_id AND x.person_id = pe.id)
ORDER BY pe.id, tt.thread_id;

DROP TABLE group_roles;
