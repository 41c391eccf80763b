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

-- The message threads addressed to each group so far.
INSERT INTO team_threads (thread_id, group_name, practice_id, updated_at)
SELECT t.id, g.name, t.practice_id, t.last_activity_at
FROM threads t
JOIN (SELECT 'providers' AS name UNION ALL SELECT 'front_office' UNION ALL SELECT 'billers'
      UNION ALL SELECT 'external_agents') g
  ON (' ' || t.groups || ' ') LIKE ('% ' || g.name || ' %')
WHERE t.kind = 'message';
