//! Every access decision of the service, and nothing else (DESIGN.md, "Need-to-know").
//!
//! Routes ask here; list queries apply the same rules as SQL filters built here; the rule that
//! allowed or the reason that denied goes into the audit event.

use uuid::Uuid;

use crate::assignments::model::AssignmentRole;
use crate::auth::actor::Actor;
use crate::error::AppError;
use crate::users::model::Role;

/// What a caller wants to do with one source (and the records hanging off it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceAction {
    /// The pseudonymised view, assignments, authorisations (and later contacts and reviews).
    View,
    /// The sealed identity, read or replaced.
    Identity,
    /// Status changes, assignments, authorisations, reviews: the controller's work.
    Manage,
    /// Logging a contact: only who meets the source, its assigned handlers and co-handlers.
    LogContact,
    /// Correcting a contact: its handlers, and controllers of the unit.
    AmendContact,
}

/// What the database says about the source and the caller's place on it.
pub struct SourceFacts<'a> {
    pub unit: &'a str,
    /// The caller's *active* assignments on this source.
    pub assignments: &'a [AssignmentRole],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by this rule (recorded in the audit event).
    Allow(&'static str),
    /// Denied for this reason (recorded; the client sees 404 either way).
    Deny(&'static str),
}

/// The need-to-know rules of DESIGN.md for one source. `facts` is `None` when no such source
/// exists. Access always needs the role and the unit *now* as well as the assignment.
pub fn decide_source(actor: &Actor, action: SourceAction, facts: Option<&SourceFacts>) -> Decision {
    let Some(facts) = facts else { return Decision::Deny("not_found") };
    let same_unit = actor.unit == facts.unit;
    let holds = |role: AssignmentRole| facts.assignments.contains(&role);
    let handler_assigned = actor.has_role(Role::Handler)
        && same_unit
        && (holds(AssignmentRole::Handler) || holds(AssignmentRole::CoHandler));
    let controller_of_unit = actor.has_role(Role::Controller) && same_unit;
    let controller_assigned = controller_of_unit && holds(AssignmentRole::Controller);
    let allowed = match action {
        SourceAction::View if handler_assigned => Some("handler_assignment"),
        SourceAction::View if controller_of_unit => Some("controller_of_unit"),
        SourceAction::Identity if handler_assigned => Some("handler_assignment"),
        SourceAction::Identity if controller_assigned => Some("controller_assignment"),
        SourceAction::Manage if controller_of_unit => Some("controller_of_unit"),
        SourceAction::LogContact if handler_assigned => Some("handler_assignment"),
        SourceAction::AmendContact if handler_assigned => Some("handler_assignment"),
        SourceAction::AmendContact if controller_of_unit => Some("controller_of_unit"),
        _ => None,
    };
    match allowed {
        Some(rule) => Decision::Allow(rule),
        None => Decision::Deny("no_need_to_know"),
    }
}

/// The same rule as [`decide_source`] with [`SourceAction::View`], as a filter for lists: the
/// caller's unit, and unless they control it, only sources they hold an active handler or
/// co-handler assignment on. `None`: the caller may see no source at all.
#[derive(Clone, Debug)]
pub struct ListScope {
    pub unit: String,
    pub user_id: Uuid,
    pub only_assigned: bool,
}

pub fn source_list_scope(actor: &Actor) -> Option<ListScope> {
    let scope = |only_assigned| ListScope { unit: actor.unit.clone(), user_id: actor.user_id, only_assigned };
    if actor.has_role(Role::Controller) {
        Some(scope(false))
    } else if actor.has_role(Role::Handler) {
        Some(scope(true))
    } else {
        None
    }
}

/// Whether the caller may see the `duplicate_suspected` flag: controllers of the source's unit
/// only — never handlers, so registering a guessed identity cannot ask "is this a source?".
pub fn may_see_deconfliction(actor: &Actor, source_unit: &str) -> bool {
    actor.has_role(Role::Controller) && actor.unit == source_unit
}

/// Separation of duties: whoever grants an authorisation must not be running the source.
pub fn check_may_authorise(facts: &SourceFacts) -> Result<(), AppError> {
    if facts.assignments.iter().any(|r| matches!(r, AssignmentRole::Handler | AssignmentRole::CoHandler)) {
        return Err(AppError::field(
            "granted_by",
            "an active handler or co-handler of the source cannot grant its authorisation",
        ));
    }
    Ok(())
}

/// May the actor use an endpoint reserved for `allowed` roles at all? (403 otherwise.)
/// A user with several roles gets the union.
pub fn role_may_use(actor: &Actor, allowed: &[Role]) -> bool {
    allowed.iter().any(|role| actor.has_role(*role))
}

/// Nobody grants themselves access: an administrator cannot change their own roles, unit or
/// disabled flag (API.md, "Roles").
pub fn check_self_administration(
    actor: &Actor,
    target: Uuid,
    changes_roles: bool,
    changes_unit: bool,
    changes_disabled: bool,
) -> Result<(), AppError> {
    if actor.user_id != target {
        return Ok(());
    }
    let field = if changes_roles {
        "roles"
    } else if changes_unit {
        "unit"
    } else if changes_disabled {
        "disabled"
    } else {
        return Ok(());
    };
    Err(AppError::field(field, "you cannot change your own roles, unit or disabled flag"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::model::Roles;

    fn actor(roles: &[Role]) -> Actor {
        Actor {
            user_id: Uuid::new_v4(),
            username: "u".into(),
            display_name: "U".into(),
            roles: Roles::new(roles.iter().copied()).unwrap(),
            unit: "DSU-NORTH".into(),
            session_id: Uuid::new_v4(),
            password_change_required: false,
        }
    }

    #[test]
    fn roles_are_a_union() {
        let both = actor(&[Role::Handler, Role::Controller]);
        assert!(role_may_use(&both, &[Role::Controller]));
        assert!(role_may_use(&both, &[Role::Handler]));
        assert!(!role_may_use(&both, &[Role::Admin]));
        assert!(!role_may_use(&actor(&[Role::Compliance]), &[Role::Admin]));
    }

    #[test]
    fn self_administration_is_refused_field_by_field() {
        let a = actor(&[Role::Admin]);
        assert!(check_self_administration(&a, a.user_id, true, false, false).is_err());
        assert!(check_self_administration(&a, a.user_id, false, true, false).is_err());
        assert!(check_self_administration(&a, a.user_id, false, false, true).is_err());
        assert!(check_self_administration(&a, a.user_id, false, false, false).is_ok());
        assert!(check_self_administration(&a, Uuid::new_v4(), true, true, true).is_ok());
    }
}
