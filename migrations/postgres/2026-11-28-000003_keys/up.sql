-- Data keys (DEKs), stored only wrapped under a KEK version of the keyring file
-- (docs/encryption.md, sections 4, 8 and 9).
CREATE TABLE data_keys (
    -- The DEK's UUID, as written into every field blob it seals.
    id TEXT PRIMARY KEY NOT NULL,
    -- The source's id (lowercase hyphenated UUID) or 'system': one DEK per owner.
    owner TEXT NOT NULL UNIQUE,
    kek_version INTEGER NOT NULL,
    -- nonce (12) || ciphertext (32) || tag (16); NULL once the key is destroyed (crypto-shredded).
    wrapped BYTEA,
    created_at TIMESTAMP NOT NULL,
    rewrapped_at TIMESTAMP,
    destroyed_at TIMESTAMP,
    -- A row is either live (wrapped) or destroyed, never both or neither.
    CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL))
);
-- rewrap and retire look keys up by the KEK version they are wrapped under.
CREATE INDEX data_keys_kek_version ON data_keys (kek_version, id);

-- One row (id = 1): the KEK version new DEKs are wrapped under, shared by every instance, and a
-- generation counter bumped whenever a DEK is destroyed, so that every instance can drop its
-- cached keys (each checks the counter at least once a second).
CREATE TABLE key_state (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    active_kek_version INTEGER NOT NULL CHECK (active_kek_version >= 1),
    generation BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
-- Every keyring starts at KEK version 1 (`humint keys init`, the evaluation keyring); `humint
-- keys rotate` moves the active version on.
INSERT INTO key_state (id, active_kek_version, generation, updated_at) VALUES (1, 1, 0, (now() AT TIME ZONE 'UTC'));
