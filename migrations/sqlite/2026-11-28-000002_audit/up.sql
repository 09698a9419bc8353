-- The audit trail. Requests insert events unchained (seq, prev_hash, hash NULL) inside their
-- own transaction; the sequencer chains committed events in batches (docs/audit.md).
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    seq BIGINT UNIQUE,
    -- Exactly the string that is hashed: YYYY-MM-DDTHH:MM:SS.ffffffZ
    at TEXT NOT NULL,
    actor_id TEXT,
    actor_username TEXT,
    action TEXT NOT NULL,
    resource_type TEXT,
    resource_id TEXT,
    source_id TEXT,
    purpose TEXT,
    outcome TEXT NOT NULL,
    reason TEXT,
    request_id TEXT,
    client_ip TEXT,
    prev_hash BLOB,
    hash BLOB,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX audit_events_unchained ON audit_events (created_at, id) WHERE seq IS NULL;
CREATE INDEX audit_events_actor ON audit_events (actor_id, seq);
CREATE INDEX audit_events_source ON audit_events (source_id, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);

CREATE TABLE audit_checkpoints (
    seq BIGINT PRIMARY KEY NOT NULL,
    hash BLOB NOT NULL,
    -- The exact signed text: humint-audit-checkpoint\n{seq}\n{hash_hex}\n
    note TEXT NOT NULL,
    signature TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
