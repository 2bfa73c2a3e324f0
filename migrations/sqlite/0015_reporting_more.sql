-- Information reporting, second part (issue 12).
-- A docking client holding `write:reports` reports for one managing unit.
ALTER TABLE api_clients ADD COLUMN unit_id BIGINT REFERENCES units(id);
-- The per-client rate limit counts a client's recent calls in the access log.
CREATE INDEX api_client_calls_client ON api_client_calls(client_id, at);
