//! `humint user create|list`.

use std::io::BufRead;

use clap::Subcommand;
use zeroize::Zeroizing;

use crate::audit::{self, Event, Outcome};
use crate::auth::passwords::{hash_blocking, password_length_ok};
use crate::config::Config;
use crate::db::write_tx;
use crate::http::context::RequestContext;
use crate::users::model::{Role, Roles, UNIT_RE, USERNAME_RE};
use crate::users::queries::{self, NewUser};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from standard input (one line), never from argv.
    Create {
        #[arg(long)]
        username: String,
        /// admin | handler | controller | compliance; repeat for several (admin stands alone).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Make the user change the password at first login (as for users an admin creates
        /// through the API). Without it the operator-chosen password stands.
        #[arg(long)]
        require_password_change: bool,
    },
    /// List users (no password hashes).
    List,
}

pub fn run(command: UserCommand, config: &Config) -> Result<(), String> {
    match command {
        UserCommand::Create { username, roles, unit, display_name, require_password_change } => {
            let roles = parse_roles(&roles)?;
            if !USERNAME_RE.is_match(&username) {
                return Err("username must match ^[a-z0-9._-]{3,64}$".into());
            }
            if !UNIT_RE.is_match(&unit) {
                return Err("unit must match ^[A-Z0-9-]{2,32}$".into());
            }
            let display_name = display_name.unwrap_or_else(|| username.clone());
            if display_name.is_empty() || display_name.chars().count() > 100 {
                return Err("display name must be 1 to 100 characters".into());
            }
            let password = read_password()?;
            let hash = hash_blocking(&password).map_err(|e| e.to_string())?;
            let mut conn = super::connect(config)?;
            let now = crate::clock::Clock::system().now();
            let user = write_tx(&mut conn, |conn| {
                let new = NewUser { username, display_name, password_hash: hash, roles, unit };
                let mut user = queries::insert(conn, new, now)?;
                if !require_password_change {
                    user = queries::clear_password_change(conn, &user.id)?;
                }
                let event =
                    Event::new("user.create", Outcome::Allowed).resource("user", Some(user.id.clone())).reason("cli");
                audit::append(conn, &RequestContext::system(), event, now)?;
                Ok::<_, crate::error::AppError>(user)
            })
            .map_err(|e| match e {
                crate::error::AppError::Conflict(m) => m,
                other => other.to_string(),
            })?;
            println!("{}", user.id);
            Ok(())
        }
        UserCommand::List => {
            let mut conn = super::connect(config)?;
            let page = crate::http::pagination::Page { limit: 10_000, after: None };
            let users = queries::list(&mut conn, &page).map_err(|e| e.to_string())?;
            for u in users {
                let v = u.view();
                let roles: Vec<&str> = v.roles.iter().map(|r| r.as_str()).collect();
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    v.id,
                    v.username,
                    roles.join(","),
                    v.unit,
                    if v.disabled { "disabled" } else { "active" }
                );
            }
            Ok(())
        }
    }
}

fn parse_roles(raw: &[String]) -> Result<Roles, String> {
    let roles: Result<Vec<Role>, String> =
        raw.iter().map(|r| r.parse::<Role>().map_err(|_| format!("unknown role `{r}`"))).collect();
    Roles::new(roles?).map_err(|_| "roles: at least one, and admin cannot be combined with another role".to_string())
}

fn read_password() -> Result<Zeroizing<String>, String> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("reading the password from stdin: {e}"))?;
    let password = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string());
    if !password_length_ok(&password) {
        return Err("the password (on stdin) must be 12 to 128 characters".into());
    }
    Ok(password)
}
