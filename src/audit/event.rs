//! Building an audit event: who, what, which resource, outcome and reason. The request's id,
//! client address and purpose are added from the [`RequestContext`] when it is appended.
//!
//! An event holds identifiers and field names only — never a decrypted value, a token or a
//! password. The builder takes `&'static str` for actions and resource types so that they are
//! stable names written in the code, not strings assembled from input.

use super::Outcome;
use crate::auth::actor::Actor;

#[derive(Clone, Debug)]
pub struct Event {
    pub actor_id: Option<String>,
    pub actor_username: Option<String>,
    pub action: &'static str,
    pub resource_type: Option<&'static str>,
    pub resource_id: Option<String>,
    pub source_id: Option<String>,
    pub outcome: Outcome,
    pub reason: Option<String>,
}

impl Event {
    pub fn new(action: &'static str, outcome: Outcome) -> Self {
        Self {
            actor_id: None,
            actor_username: None,
            action,
            resource_type: None,
            resource_id: None,
            source_id: None,
            outcome,
            reason: None,
        }
    }

    /// An event caused by an authenticated caller.
    pub fn by(actor: &Actor, action: &'static str, outcome: Outcome) -> Self {
        Self::new(action, outcome).actor_ids(Some(actor.user_id.to_string()), Some(actor.username.clone()))
    }

    pub fn actor_ids(mut self, id: Option<String>, username: Option<String>) -> Self {
        self.actor_id = id;
        self.actor_username = username;
        self
    }

    pub fn resource(mut self, kind: &'static str, id: Option<String>) -> Self {
        self.resource_type = Some(kind);
        self.resource_id = id;
        self
    }

    pub fn source(mut self, source_id: impl ToString) -> Self {
        self.source_id = Some(source_id.to_string());
        self
    }

    /// The access rule that allowed, or the reason that denied. Rule names and field names only.
    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_string());
        self
    }
}
