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
