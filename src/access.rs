//! Every access decision of the service, and nothing else (DESIGN.md, "Need-to-know").
//!
//! Routes ask here; list queries apply the same rules as SQL filters built here; the rule that
//! allowed or the reason that denied goes into the audit event.

use uuid::Uuid;

use crate::auth::actor::Actor;
use crate::error::AppError;
use crate::users::model::Role;

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
