-- A mail is claimed (status 'sending') before it is sent, so two senders (the cron job and the
-- sender loop, or two nodes) never both send it; a claim older than ten minutes is given up.
ALTER TABLE mail_outbox ADD COLUMN claimed_at BIGINT;
ALTER TABLE mail_outbox ADD COLUMN claimed_by TEXT;
