//! The bootstrap admin, the password-change gate, role boundaries and user administration.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn the_bootstrap_admin_logs_in_from_a_private_file_and_must_change_the_password() {
    let app = spawn_app().await;
    let file = app.dir.path().join("initial-admin-password");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "bootstrap password file must be 0600");
    }
    let password = app.bootstrap_password();
    assert!(password.len() >= 20);
    let login = app.login("admin", &password).await;
    assert_eq!(login.status(), StatusCode::OK);
    let pair = body(login).await;
    assert_eq!(pair["password_change_required"], true);
    assert_eq!(pair["token_type"], "Bearer");
    let token = pair["access_token"].as_str().unwrap();

    // Everything but /me, /me/password and logout is refused until the password changes.
    let users = app.get("/api/v1/users", token).await;
    assert_eq!(users.status(), StatusCode::FORBIDDEN);
    assert_eq!(body(users).await["type"], "password-change-required");
    let me = body(app.get("/api/v1/me", token).await).await;
    assert_eq!(me["username"], "admin");
    assert_eq!(me["roles"], json!(["admin"]));
    assert_eq!(me["password_change_required"], true);

    let changed = app
        .post("/api/v1/me/password", Some(token), json!({"current_password": password, "new_password": PASSWORD}))
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/users", token).await.status(), StatusCode::OK);
    assert_eq!(app.login("admin", &password).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn users_created_by_an_admin_must_change_their_password_first() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = app
        .post("/api/v1/users", Some(&admin), json!({"username": "h.one", "display_name": "H One", "password": "temporary password 1", "roles": ["handler"], "unit": "DSU-NORTH"}))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let user = body(created).await;
    assert!(user.get("password_hash").is_none() && user.get("password").is_none());
    assert_eq!(user["disabled"], false);
    let pair = body(app.login("h.one", "temporary password 1").await).await;
    assert_eq!(pair["password_change_required"], true);
    let token = pair["access_token"].as_str().unwrap();
    let refused = app.get("/api/v1/users", token).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn only_admins_may_use_the_users_endpoints() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let target = app.user(&["handler"], "DSU-NORTH").await;
    let path_one = format!("/api/v1/users/{}", target.id);
    for roles in [&["handler"][..], &["controller"], &["compliance"], &["handler", "controller"]] {
        let user = app.user(roles, "DSU-NORTH").await;
        let t = user.token.as_str();
        assert_eq!(app.get("/api/v1/users", t).await.status(), StatusCode::FORBIDDEN, "{roles:?} list");
        assert_eq!(app.get(&path_one, t).await.status(), StatusCode::FORBIDDEN, "{roles:?} get");
        assert_eq!(
            app.patch(&path_one, t, json!({"disabled": true})).await.status(),
            StatusCode::FORBIDDEN,
            "{roles:?} patch"
        );
        let create = app.post("/api/v1/users", Some(t), json!({"username": "x.y.z"})).await;
        assert_eq!(create.status(), StatusCode::FORBIDDEN, "{roles:?} create (403 before the body is judged)");
    }
    assert_eq!(app.get("/api/v1/users", &admin).await.status(), StatusCode::OK);
    assert_eq!(app.get(&path_one, &admin).await.status(), StatusCode::OK);
    let missing = format!("/api/v1/users/{}", uuid::Uuid::new_v4());
    assert_eq!(app.get(&missing, &admin).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/users/not-a-uuid", &admin).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_is_alone_and_nobody_changes_their_own_standing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let combined = app
        .post("/api/v1/users", Some(&admin), json!({"username": "adm2", "display_name": "A", "password": "long enough pass", "roles": ["admin", "handler"], "unit": "ADMIN"}))
        .await;
    assert_eq!(combined.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body(combined).await["errors"]["roles"].is_array());

    let me = body(app.get("/api/v1/me", &admin).await).await;
    let own = format!("/api/v1/users/{}", me["id"].as_str().unwrap());
    for change in [json!({"roles": ["handler"]}), json!({"unit": "DSU-NORTH"}), json!({"disabled": true})] {
        let r = app.patch(&own, &admin, change.clone()).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{change}");
    }
    assert_eq!(app.patch(&own, &admin, json!({"display_name": "Chief admin"})).await.status(), StatusCode::OK);
    let again = app.post("/api/v1/users", Some(&admin), json!({"username": "admin", "display_name": "B", "password": "long enough pass", "roles": ["handler"], "unit": "X1"})).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_user_list_pages_through_everyone_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for _ in 0..7 {
        app.user(&["handler"], "DSU-NORTH").await;
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users?limit=3&cursor={c}"),
            None => "/api/v1/users?limit=3".to_string(),
        };
        let page = body(app.get(&path, &admin).await).await;
        for u in page["items"].as_array().unwrap() {
            assert!(seen.insert(u["id"].as_str().unwrap().to_string()), "duplicate across pages");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8, "admin + 7 users");
    for bad in ["?limit=0", "?limit=201", "?limit=abc", "?cursor=%%%"] {
        let r = app.request(Method::GET, &format!("/api/v1/users{bad}"), Some(&admin), None).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}
