-- Index sync across nodes: the search outbox becomes an append-only change log. Each node
-- applies it from its own cursor (kept in its index) and reports the cursor here; the log
-- is pruned below the smallest cursor of the live nodes, and search_prune remembers how far,
-- so a node that was away longer rebuilds.
CREATE TABLE search_nodes (
    node_id TEXT PRIMARY KEY,
    cursor BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);

CREATE TABLE search_prune (
    id BIGINT PRIMARY KEY,
    pruned_through BIGINT NOT NULL
);
