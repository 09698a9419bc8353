//! Login lockout and the indistinguishability of unknown usernames.

use chrono::TimeDelta;
use reqwest::StatusCode;

use crate::support::*;

#[tokio::test]
async fn five_failures_lock_even_the_right_password_until_the_period_ends() {
    let app = spawn_app().await;
    let user = app.user(&["handler"], "DSU-NORTH").await;
    for i in 0..5 {
        let r = app.login(&user.username, "wrong password here").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let locked = app.login(&user.username, &user.password).await;
    assert_eq!(locked.status(), StatusCode::LOCKED);
    assert_eq!(body(locked).await["type"], "account-locked");
    app.clock.advance(TimeDelta::minutes(14));
    assert_eq!(app.login(&user.username, &user.password).await.status(), StatusCode::LOCKED);
    app.clock.advance(TimeDelta::minutes(1) + TimeDelta::seconds(1));
    assert_eq!(app.login(&user.username, &user.password).await.status(), StatusCode::OK);
    // A success resets the count: four more failures do not lock.
    for _ in 0..4 {
        app.login(&user.username, "wrong password here").await;
    }
    assert_eq!(app.login(&user.username, &user.password).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn twenty_parallel_wrong_attempts_get_at_most_five_password_checks() {
    let app = spawn_app().await;
    let user = app.user(&["handler"], "DSU-NORTH").await;
    let attempts = (0..20).map(|_| app.login(&user.username, "wrong password here"));
    let results = futures_util::future::join_all(attempts).await;
    let unauthorized = results.iter().filter(|r| r.status() == StatusCode::UNAUTHORIZED).count();
    let locked = results.iter().filter(|r| r.status() == StatusCode::LOCKED).count();
    assert!(unauthorized <= 5, "{unauthorized} attempts reached the password check");
    assert_eq!(unauthorized + locked, 20);
    assert_eq!(app.login(&user.username, &user.password).await.status(), StatusCode::LOCKED);
}

#[tokio::test]
async fn unknown_usernames_answer_and_lock_exactly_like_known_ones() {
    let app = spawn_app().await;
    let user = app.user(&["handler"], "DSU-NORTH").await;
    let known = body(app.login(&user.username, "wrong password here").await).await;
    let unknown = body(app.login("nobody.here", "wrong password here").await).await;
    assert_eq!(known, unknown, "the 401 body must not tell whether the user exists");
    for _ in 0..4 {
        assert_eq!(app.login("nobody.here", "wrong password here").await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.login("nobody.here", "wrong password here").await.status(), StatusCode::LOCKED);
}

#[tokio::test]
async fn a_disabled_user_with_the_right_password_gets_the_same_401() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let user = app.user(&["compliance"], "AUDIT").await;
    app.patch(&format!("/api/v1/users/{}", user.id), &admin, serde_json::json!({"disabled": true})).await;
    let disabled = body(app.login(&user.username, &user.password).await).await;
    let wrong = body(app.login("nobody.at.all", "wrong password here").await).await;
    assert_eq!(disabled, wrong);
}
