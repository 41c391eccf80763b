-- Scheduled sends (issue 15, rule 12): a draft with a time to be sent at. It holds its
-- uploads as any draft does; a worker sends it through every rule at that time, in the
-- same transaction that removes it (so exactly once). A refusal keeps it, with its
-- reason, and takes the time off.
ALTER TABLE drafts ADD COLUMN send_at BIGINT;
ALTER TABLE drafts ADD COLUMN failure_code TEXT;
ALTER TABLE drafts ADD COLUMN failure_detail TEXT;
CREATE INDEX drafts_send_at ON drafts (send_at) WHERE send_at IS NOT NULL;
