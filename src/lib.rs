//! humint: a hardened REST service for managing covert human sources.
//!
//! DESIGN.md's shape, visible in the tree: one module per part of the domain, `access` for
//! every need-to-know decision, `error` for the one error type, `server` for the route table.

pub mod access;
pub mod app;
pub mod assignments;
pub mod audit;
pub mod auth;
pub mod authorisations;
pub mod bootstrap;
pub mod cli;
pub mod clock;
pub mod config;
pub mod contacts;
pub mod crypto;
pub mod db;
pub mod error;
pub mod grading;
pub mod health;
pub mod http;
pub mod keys;
pub mod openapi;
pub mod reviews;
pub mod sealed;
pub mod server;
pub mod sources;
pub mod state;
pub mod time;
pub mod users;
