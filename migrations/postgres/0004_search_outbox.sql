-- Search outbox (检索待办): every change to a searchable record adds a row in the same
-- transaction; the indexer applies rows in batches and deletes them after the index commit.
CREATE TABLE search_outbox (
    id BIGSERIAL PRIMARY KEY,
    doc_type TEXT NOT NULL,
    doc_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
