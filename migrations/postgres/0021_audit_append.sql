-- Appending to the audit chain in one round trip. The chain's head row is what serialises
-- appenders: it stays locked from its update to the commit. Taken by the application, it
-- cost three round trips (take the head, insert the event, write the new hash) before the
-- commit; here it is one statement, so the head is held for that statement and the commit.
-- The hash is the one src/store/audit.rs computes (`chain_hash`): SHA-256, in hex, over
-- each part written as its length in bytes, ':' and the part, in this order: the previous
-- hash, seq, at, then practice, actor, action, object type, object id, outcome, ip and
-- session, an absent one as '-' and a present one as '+' and its value. `confide audit
-- verify` recomputes every hash with the application's code.
CREATE FUNCTION confide_audit_part(v TEXT) RETURNS TEXT AS $$
    SELECT octet_length(v)::text || ':' || v
$$ LANGUAGE sql IMMUTABLE STRICT;

CREATE FUNCTION confide_audit_optional(v TEXT) RETURNS TEXT AS $$
    SELECT confide_audit_part(CASE WHEN v IS NULL THEN '-' ELSE '+' || v END)
$$ LANGUAGE sql IMMUTABLE;

CREATE FUNCTION confide_audit_append(
    p_at BIGINT, p_practice_id TEXT, p_actor_id TEXT, p_action TEXT, p_object_type TEXT,
    p_object_id TEXT, p_outcome TEXT, p_ip TEXT, p_session_ref TEXT
) RETURNS BIGINT AS $$
DECLARE
    v_seq  BIGINT;
    v_prev TEXT;
    v_hash TEXT;
BEGIN
    UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash INTO v_seq, v_prev;
    v_hash := encode(sha256(convert_to(
        confide_audit_part(v_prev) || confide_audit_part(v_seq::text)
        || confide_audit_part(p_at::text) || confide_audit_optional(p_practice_id)
        || confide_audit_optional(p_actor_id) || confide_audit_part(p_action)
        || confide_audit_optional(p_object_type) || confide_audit_optional(p_object_id)
        || confide_audit_part(p_outcome) || confide_audit_optional(p_ip)
        || confide_audit_optional(p_session_ref), 'UTF8')), 'hex');
    INSERT INTO audit_events (seq, at, practice_id, actor_id, action, object_type, object_id,
                              outcome, ip, session_ref, prev_hash, hash)
    VALUES (v_seq, p_at, p_practice_id, p_actor_id, p_action, p_object_type, p_object_id,
            p_outcome, p_ip, p_session_ref, v_prev, v_hash);
    UPDATE audit_head SET hash = v_hash WHERE id = 1;
    RETURN v_seq;
END;
$$ LANGUAGE plpgsql;

-- Events of writes that committed while others were writing, waiting for the chainer
-- (src/store/chain.rs) to chain many at once: a write inserts its events here in its own
-- transaction, without the head, and is answered once the chainer has moved them into
-- audit_events (one head update and one commit for all of them). An event is durable here
-- from its write's commit; one left by a crash is chained when a server next starts.
CREATE TABLE audit_pending (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    practice_id TEXT,
    actor_id    TEXT,
    action      TEXT   NOT NULL,
    object_type TEXT,
    object_id   TEXT,
    outcome     TEXT   NOT NULL,
    ip          TEXT,
    session_ref TEXT
);
