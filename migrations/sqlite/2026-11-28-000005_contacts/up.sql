-- Contact logs, graded intelligence, amendments and reliability reviews. Append-only through the
-- API: a contact's original columns are never rewritten; corrections are amendments. Free text
-- is ciphertext under the source's data key (docs/encryption.md).
CREATE TABLE contacts (
    id TEXT PRIMARY KEY NOT NULL,
    source_id TEXT NOT NULL REFERENCES sources (id),
    occurred_at TIMESTAMP NOT NULL,
    -- occurred_at after amendments: what lists order by and status drift is judged on.
    effective_occurred_at TIMESTAMP NOT NULL,
    duration_minutes INTEGER,
    contact_type TEXT NOT NULL,
    location BLOB NOT NULL,
    summary BLOB NOT NULL,
    tasking BLOB NOT NULL,
    welfare_concerns BLOB NOT NULL,
    recorded_by TEXT NOT NULL REFERENCES users (id),
    recorded_at TIMESTAMP NOT NULL,
    status_drift BOOLEAN NOT NULL DEFAULT 0
);
CREATE INDEX contacts_source_time ON contacts (source_id, effective_occurred_at, id);

CREATE TABLE intelligence_items (
    id TEXT PRIMARY KEY NOT NULL,
    contact_id TEXT NOT NULL REFERENCES contacts (id),
    source_id TEXT NOT NULL REFERENCES sources (id),
    position INTEGER NOT NULL,
    content BLOB NOT NULL,
    scheme TEXT NOT NULL,
    source_grade TEXT NOT NULL,
    information_grade TEXT NOT NULL,
    handling TEXT,
    handling_conditions BLOB
);
CREATE INDEX intelligence_items_contact ON intelligence_items (contact_id, position);
CREATE INDEX intelligence_items_source ON intelligence_items (source_id);

CREATE TABLE contact_amendments (
    id TEXT PRIMARY KEY NOT NULL,
    contact_id TEXT NOT NULL REFERENCES contacts (id),
    field TEXT NOT NULL,
    previous_value BLOB NOT NULL,
    new_value BLOB NOT NULL,
    reason BLOB NOT NULL,
    amended_by TEXT NOT NULL REFERENCES users (id),
    amended_at TIMESTAMP NOT NULL
);
CREATE INDEX contact_amendments_contact ON contact_amendments (contact_id, amended_at);

CREATE TABLE reviews (
    id TEXT PRIMARY KEY NOT NULL,
    source_id TEXT NOT NULL REFERENCES sources (id),
    scheme TEXT NOT NULL,
    grade TEXT NOT NULL,
    rationale BLOB NOT NULL,
    reviewed_by TEXT NOT NULL REFERENCES users (id),
    reviewed_at TIMESTAMP NOT NULL,
    next_review_due TIMESTAMP NOT NULL
);
CREATE INDEX reviews_source ON reviews (source_id, reviewed_at);
