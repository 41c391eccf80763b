-- "Convert to a group" (issue 15, rule 8): a conversation started from a thread names it.
-- The link carries no history: only people of the old thread see where it came from.
ALTER TABLE threads ADD COLUMN linked_from TEXT;
-- A draft of such a conversation keeps its link.
ALTER TABLE drafts ADD COLUMN linked_from TEXT;
