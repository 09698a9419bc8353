-- Users, sessions, refresh tokens and login lockout. Portable types only: TEXT ids generated in
-- Rust, BIGINT, BOOLEAN, TIMESTAMP (UTC), BLOB.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    -- Sorted, comma-separated role names from a closed set (admin, handler, controller, compliance).
    roles TEXT NOT NULL,
    unit TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT 0,
    password_change_required BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX users_unit ON users (unit);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    revoked_reason TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Refresh tokens are stored only as SHA-256 of the token; each is single use (spent_at).
CREATE TABLE refresh_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    token_hash BLOB NOT NULL UNIQUE,
    issued_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    spent_at TIMESTAMP
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- One row per attempted username, existing or not, so lockout says nothing about existence.
CREATE TABLE login_attempts (
    username TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    locked_until TIMESTAMP,
    last_failure_at TIMESTAMP
);
