//! The one schema of both backends (written by hand: both migrations folders must agree with it,
//! and the migration tests exercise every table through it).

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        display_name -> Text,
        password_hash -> Text,
        roles -> Text,
        unit -> Text,
        disabled -> Bool,
        password_change_required -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        session_id -> Text,
        token_hash -> Binary,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
        spent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_attempts (username) {
        username -> Text,
        failures -> Integer,
        locked_until -> Nullable<Timestamp>,
        last_failure_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));

diesel::table! {
    audit_events (id) {
        id -> Text,
        seq -> Nullable<BigInt>,
        at -> Text,
        actor_id -> Nullable<Text>,
        actor_username -> Nullable<Text>,
        action -> Text,
        resource_type -> Nullable<Text>,
        resource_id -> Nullable<Text>,
        source_id -> Nullable<Text>,
        purpose -> Nullable<Text>,
        outcome -> Text,
        reason -> Nullable<Text>,
        request_id -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        prev_hash -> Nullable<Binary>,
        hash -> Nullable<Binary>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_checkpoints (seq) {
        seq -> BigInt,
        hash -> Binary,
        note -> Text,
        signature -> Text,
        key_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    refresh_tokens,
    login_attempts,
    audit_events,
    audit_checkpoints,
    data_keys,
    key_state
);

diesel::table! {
    data_keys (id) {
        id -> Text,
        owner -> Text,
        kek_version -> Integer,
        wrapped -> Nullable<Binary>,
        created_at -> Timestamp,
        rewrapped_at -> Nullable<Timestamp>,
        destroyed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    key_state (id) {
        id -> Integer,
        active_kek_version -> Integer,
        generation -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sources (id) {
        id -> Text,
        urn -> Text,
        pseudonym -> Text,
        unit -> Text,
        status -> Text,
        risk_level -> Text,
        juvenile -> Bool,
        registered_at -> Timestamp,
        registered_by -> Text,
        blind_index -> Nullable<BigInt>,
        duplicate_suspected -> Bool,
        status_drift -> Bool,
        reactivated -> Bool,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    urn_counters (unit, year) {
        unit -> Text,
        year -> Integer,
        last_value -> BigInt,
    }
}

diesel::table! {
    source_identities (source_id) {
        source_id -> Text,
        legal_name -> Binary,
        aliases -> Binary,
        date_of_birth -> Binary,
        nationality -> Binary,
        phone -> Binary,
        address -> Binary,
        notes -> Binary,
        updated_at -> Timestamp,
        updated_by -> Text,
    }
}

diesel::table! {
    source_status_changes (id) {
        id -> Text,
        source_id -> Text,
        from_status -> Text,
        to_status -> Text,
        reason -> Binary,
        changed_by -> Text,
        changed_at -> Timestamp,
    }
}

diesel::table! {
    assignments (id) {
        id -> Text,
        source_id -> Text,
        user_id -> Text,
        role -> Text,
        started_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
        assigned_by -> Text,
        ended_by -> Nullable<Text>,
    }
}

diesel::table! {
    authorisations (id) {
        id -> Text,
        source_id -> Text,
        purpose -> Binary,
        valid_from -> Timestamp,
        valid_until -> Timestamp,
        granted_by -> Text,
        granted_at -> Timestamp,
        cancelled_at -> Nullable<Timestamp>,
        cancelled_by -> Nullable<Text>,
        cancel_reason -> Nullable<Binary>,
    }
}

diesel::joinable!(assignments -> sources (source_id));
diesel::joinable!(assignments -> users (user_id));
diesel::joinable!(authorisations -> sources (source_id));
diesel::joinable!(source_identities -> sources (source_id));
diesel::allow_tables_to_appear_in_same_query!(
    sources,
    urn_counters,
    source_identities,
    source_status_changes,
    assignments,
    authorisations,
    users
);

diesel::table! {
    contacts (id) {
        id -> Text,
        source_id -> Text,
        occurred_at -> Timestamp,
        effective_occurred_at -> Timestamp,
        duration_minutes -> Nullable<Integer>,
        contact_type -> Text,
        location -> Binary,
        summary -> Binary,
        tasking -> Binary,
        welfare_concerns -> Binary,
        recorded_by -> Text,
        recorded_at -> Timestamp,
        status_drift -> Bool,
    }
}

diesel::table! {
    intelligence_items (id) {
        id -> Text,
        contact_id -> Text,
        source_id -> Text,
        position -> Integer,
        content -> Binary,
        scheme -> Text,
        source_grade -> Text,
        information_grade -> Text,
        handling -> Nullable<Text>,
        handling_conditions -> Nullable<Binary>,
    }
}

diesel::table! {
    contact_amendments (id) {
        id -> Text,
        contact_id -> Text,
        field -> Text,
        previous_value -> Binary,
        new_value -> Binary,
        reason -> Binary,
        amended_by -> Text,
        amended_at -> Timestamp,
    }
}

diesel::table! {
    reviews (id) {
        id -> Text,
        source_id -> Text,
        scheme -> Text,
        grade -> Text,
        rationale -> Binary,
        reviewed_by -> Text,
        reviewed_at -> Timestamp,
        next_review_due -> Timestamp,
    }
}

diesel::joinable!(contacts -> sources (source_id));
diesel::joinable!(intelligence_items -> contacts (contact_id));
diesel::joinable!(contact_amendments -> contacts (contact_id));
diesel::joinable!(reviews -> sources (source_id));
diesel::allow_tables_to_appear_in_same_query!(contacts, intelligence_items, contact_amendments, reviews);
diesel::allow_tables_to_appear_in_same_query!(contacts, sources);
diesel::allow_tables_to_appear_in_same_query!(reviews, sources);
diesel::allow_tables_to_appear_in_same_query!(contacts, users);
diesel::allow_tables_to_appear_in_same_query!(reviews, users);
