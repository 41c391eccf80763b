-- Retention (issue 17): a practice may keep threads a number of years after their last
-- activity, then they are purged (unless a legal hold covers them). NULL: kept forever.
ALTER TABLE practice_settings ADD COLUMN retention_years INTEGER;
CREATE INDEX threads_practice_activity ON threads (practice_id, last_activity_at);
