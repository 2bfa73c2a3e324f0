-- Uploaded files' bytes in the database (PostgreSQL deployments: every node reads every file).
-- The embedded SQLite default keeps files under $LABSHARE_DATA_DIR/uploads and leaves this empty.
CREATE TABLE upload_blobs (
    upload_id BIGINT PRIMARY KEY REFERENCES uploads(id),
    bytes BLOB NOT NULL
);
