-- The workflow engine (issue 19): the audit head's hash follows each appended entry inside
-- the INSERT itself, so an append is two statements (advance the head, insert the entry)
-- instead of three. The head row still serialises appends: it is updated first.
CREATE FUNCTION workflow_audit_head_follows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE workflow_audit_head SET hash = NEW.hash WHERE id = 1 AND seq = NEW.seq;
    RETURN NULL;
END;
$$;

CREATE TRIGGER workflow_audit_head_follows AFTER INSERT ON workflow_audit FOR EACH ROW EXECUTE FUNCTION workflow_audit_head_follows();
