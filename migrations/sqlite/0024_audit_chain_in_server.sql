-- The workflow engine (issue 19): on PostgreSQL the audit chain is now extended by the server,
-- at commit, so an append is one INSERT that travels with the decision's other writes. SQLite's write
-- transactions run in-process (`store::sqlite_writer`), where a statement costs no round trip:
-- the engine still numbers and hashes the entry itself and the head follows by the trigger
-- of migration 0023. Nothing changes in this schema; the file keeps the two folders in step.
SELECT 1;
