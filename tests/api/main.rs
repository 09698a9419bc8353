//! The integration suite: the real server over HTTP, on SQLite by default or on PostgreSQL when
//! `HUMINT_TEST_DATABASE_URL` is set (each test in its own fresh database).

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

mod audit;
mod audit_chain_independent;
mod audit_trail_reader;
mod audit_vectors;
mod canary;
mod contacts;
mod group_commit;
mod input;
mod keys;
mod lockout;
mod matrix;
mod ops;
mod plans;
mod sources;
mod support;
mod tokens;
mod users;
mod world;
