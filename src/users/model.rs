//! Users, roles and units as typed values.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use regex::Regex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::schema::users;

pub static USERNAME_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9._-]{3,64}$").unwrap_or_else(|_| unreachable!("static pattern")));
pub static UNIT_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Z0-9-]{2,32}$").unwrap_or_else(|_| unreachable!("static pattern")));

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Compliance,
    Controller,
    Handler,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Compliance => "compliance",
            Role::Controller => "controller",
            Role::Handler => "handler",
        }
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "admin" => Ok(Role::Admin),
            "compliance" => Ok(Role::Compliance),
            "controller" => Ok(Role::Controller),
            "handler" => Ok(Role::Handler),
            _ => Err(()),
        }
    }
}

/// A non-empty set of roles in which `admin` stands alone.
/// INVARIANT: constructed only through [`Roles::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roles(BTreeSet<Role>);

#[derive(Debug, PartialEq, Eq)]
pub enum RolesError {
    Empty,
    AdminCombined,
}

impl Roles {
    pub fn new(roles: impl IntoIterator<Item = Role>) -> Result<Self, RolesError> {
        let set: BTreeSet<Role> = roles.into_iter().collect();
        if set.is_empty() {
            return Err(RolesError::Empty);
        }
        if set.contains(&Role::Admin) && set.len() > 1 {
            return Err(RolesError::AdminCombined);
        }
        Ok(Self(set))
    }

    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }

    /// Storage form: sorted, comma-separated.
    pub fn to_column(&self) -> String {
        self.iter().map(Role::as_str).collect::<Vec<_>>().join(",")
    }

    pub fn from_column(s: &str) -> Option<Self> {
        let roles: Option<Vec<Role>> = s.split(',').map(|r| r.parse().ok()).collect();
        Self::new(roles?).ok()
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_column())
    }
}

/// A user as the API shows it: never a password hash.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub unit: String,
    pub disabled: bool,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub roles: String,
    pub unit: String,
    pub disabled: bool,
    pub password_change_required: bool,
    pub created_at: chrono::NaiveDateTime,
    pub updated_at: chrono::NaiveDateTime,
}

impl UserRow {
    /// The stored roles. A row edited in the database into something `Roles` cannot hold
    /// yields no role at all: every decision then denies (fail closed).
    pub fn roles(&self) -> Roles {
        Roles::from_column(&self.roles).unwrap_or_else(|| Roles(BTreeSet::new()))
    }

    pub fn id(&self) -> Uuid {
        Uuid::parse_str(&self.id).unwrap_or(Uuid::nil())
    }

    pub fn view(&self) -> UserView {
        UserView {
            id: self.id(),
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            roles: self.roles().iter().collect(),
            unit: self.unit.clone(),
            disabled: self.disabled,
            created_at: crate::time::from_db(self.created_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_stands_alone() {
        assert_eq!(Roles::new([Role::Admin, Role::Handler]), Err(RolesError::AdminCombined));
        assert_eq!(Roles::new([]), Err(RolesError::Empty));
        let r = Roles::new([Role::Handler, Role::Controller]).unwrap();
        assert_eq!(r.to_column(), "controller,handler");
        assert_eq!(Roles::from_column("controller,handler"), Some(r));
        assert_eq!(Roles::from_column("admin,handler"), None);
        assert_eq!(Roles::from_column("root"), None);
    }

    #[test]
    fn username_and_unit_patterns() {
        assert!(USERNAME_RE.is_match("j.doe-2"));
        assert!(!USERNAME_RE.is_match("JDoe"));
        assert!(!USERNAME_RE.is_match("ab"));
        assert!(UNIT_RE.is_match("DSU-NORTH"));
        assert!(!UNIT_RE.is_match("dsu-north"));
    }
}
