-- Keys the server makes for itself on first start and every node shares: for now the key
-- that signs list cursors, so that a cursor from one node is honoured by another.
CREATE TABLE server_keys (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
