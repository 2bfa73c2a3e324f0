-- The workflow engine (issue 19): on PostgreSQL the audit chain is extended by the server, at
-- commit. An entry is inserted without its place in the chain (it gets a pending negative
-- number and empty hashes) and takes no lock. A deferred constraint trigger then, inside
-- COMMIT, takes the head's row lock, numbers the entry, links it to the one before and hashes
-- it exactly as `workflow::audit::digest` does (each part's UTF-8 bytes after their length as
-- eight little-endian bytes, SHA-256, lower-case hex), so `labshare audit verify` checks the
-- entries of both backends alike. The chain's order is the commits' order, and the head is
-- held only while a transaction commits, never while its client is being waited for.
DROP TRIGGER workflow_audit_head_follows ON workflow_audit;
DROP FUNCTION workflow_audit_head_follows();

CREATE SEQUENCE workflow_audit_pending;

CREATE FUNCTION workflow_audit_digest(parts TEXT[]) RETURNS TEXT LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    acc BYTEA := ''::BYTEA;
    part TEXT;
    bytes BYTEA;
    len BYTEA;
BEGIN
    FOREACH part IN ARRAY parts LOOP
        bytes := convert_to(part, 'UTF8');
        len := int8send(octet_length(bytes)::BIGINT);
        acc := acc || substr(len, 8, 1) || substr(len, 7, 1) || substr(len, 6, 1) || substr(len, 5, 1)
                   || substr(len, 4, 1) || substr(len, 3, 1) || substr(len, 2, 1) || substr(len, 1, 1) || bytes;
    END LOOP;
    RETURN encode(sha256(acc), 'hex');
END;
$$;

-- An entry inserted without them has a pending place, unique until the commit gives it its own.
ALTER TABLE workflow_audit ALTER COLUMN seq SET DEFAULT -nextval('workflow_audit_pending'),
    ALTER COLUMN prev_hash SET DEFAULT '', ALTER COLUMN hash SET DEFAULT '';

-- At commit, entry by entry in the order they were inserted.
CREATE FUNCTION workflow_audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev_seq BIGINT;
    prev TEXT;
    next_seq BIGINT;
    next_hash TEXT;
BEGIN
    SELECT seq, hash INTO prev_seq, prev FROM workflow_audit_head WHERE id = 1 FOR UPDATE;
    next_seq := prev_seq + 1;
    next_hash := workflow_audit_digest(ARRAY[
        next_seq::TEXT, prev, NEW.instance_id::TEXT, NEW.at::TEXT, COALESCE(NEW.actor_id::TEXT, ''),
        NEW.workflow_key, NEW.version::TEXT, NEW.state, NEW.action, NEW.to_state,
        NEW.comment, NEW.data
    ]);
    UPDATE workflow_audit SET seq = next_seq, prev_hash = prev, hash = next_hash WHERE seq = NEW.seq;
    UPDATE workflow_audit_head SET seq = next_seq, hash = next_hash WHERE id = 1;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER workflow_audit_chain AFTER INSERT ON workflow_audit
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION workflow_audit_chain();
