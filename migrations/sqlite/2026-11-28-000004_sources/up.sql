-- Sources (pseudonymised), their sealed identities, status history, assignments and
-- authorisations. Every free-text and identity column is ciphertext (BLOB) under the source's
-- data key, bound to its table, column, row and source (docs/encryption.md).
CREATE TABLE sources (
    id TEXT PRIMARY KEY NOT NULL,
    urn TEXT NOT NULL UNIQUE,
    pseudonym TEXT NOT NULL UNIQUE,
    unit TEXT NOT NULL,
    status TEXT NOT NULL,
    risk_level TEXT NOT NULL,
    juvenile BOOLEAN NOT NULL,
    registered_at TIMESTAMP NOT NULL,
    registered_by TEXT NOT NULL REFERENCES users (id),
    -- HMAC of the normalised name and date of birth, truncated to 32 bits; never returned.
    blind_index BIGINT,
    duplicate_suspected BOOLEAN NOT NULL DEFAULT 0,
    status_drift BOOLEAN NOT NULL DEFAULT 0,
    reactivated BOOLEAN NOT NULL DEFAULT 0,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX sources_unit ON sources (unit, registered_at);
CREATE INDEX sources_blind_index ON sources (blind_index);

-- One counter per unit and year: URNs are {UNIT}-{YEAR}-{NNNNN}.
CREATE TABLE urn_counters (
    unit TEXT NOT NULL,
    year INTEGER NOT NULL,
    last_value BIGINT NOT NULL,
    PRIMARY KEY (unit, year)
);

CREATE TABLE source_identities (
    source_id TEXT PRIMARY KEY NOT NULL REFERENCES sources (id),
    legal_name BLOB NOT NULL,
    aliases BLOB NOT NULL,
    date_of_birth BLOB NOT NULL,
    nationality BLOB NOT NULL,
    phone BLOB NOT NULL,
    address BLOB NOT NULL,
    notes BLOB NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT NOT NULL REFERENCES users (id)
);

CREATE TABLE source_status_changes (
    id TEXT PRIMARY KEY NOT NULL,
    source_id TEXT NOT NULL REFERENCES sources (id),
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    reason BLOB NOT NULL,
    changed_by TEXT NOT NULL REFERENCES users (id),
    changed_at TIMESTAMP NOT NULL
);
CREATE INDEX source_status_changes_source ON source_status_changes (source_id, changed_at);

CREATE TABLE assignments (
    id TEXT PRIMARY KEY NOT NULL,
    source_id TEXT NOT NULL REFERENCES sources (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP,
    assigned_by TEXT NOT NULL REFERENCES users (id),
    ended_by TEXT
);
CREATE INDEX assignments_source ON assignments (source_id, ended_at);
CREATE INDEX assignments_user ON assignments (user_id, ended_at);

CREATE TABLE authorisations (
    id TEXT PRIMARY KEY NOT NULL,
    source_id TEXT NOT NULL REFERENCES sources (id),
    purpose BLOB NOT NULL,
    valid_from TIMESTAMP NOT NULL,
    valid_until TIMESTAMP NOT NULL,
    granted_by TEXT NOT NULL REFERENCES users (id),
    granted_at TIMESTAMP NOT NULL,
    cancelled_at TIMESTAMP,
    cancelled_by TEXT,
    cancel_reason BLOB
);
CREATE INDEX authorisations_source ON authorisations (source_id, valid_from);
