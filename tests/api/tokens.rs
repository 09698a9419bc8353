//! Token attacks: every forged, altered, expired or revoked token gets 401.

use chrono::TimeDelta;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

async fn me_status(app: &TestApp, token: &str) -> StatusCode {
    app.get("/api/v1/me", token).await.status()
}

#[tokio::test]
async fn a_valid_token_works_and_no_token_is_401() {
    let app = spawn_app().await;
    let user = app.user(&["handler"], "DSU-NORTH").await;
    assert_eq!(me_status(&app, &user.token).await, StatusCode::OK);
    let none = app.request(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["content-type"], "application/problem+json");
    for header in ["Bearer", "Basic dXNlcjpwYXNz", "Bearer ", "bearer x.y"] {
        let r = app.client.get(app.url("/api/v1/me")).header("Authorization", header).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{header}");
    }
}

#[tokio::test]
async fn forged_and_altered_tokens_are_401() {
    let app = spawn_app().await;
    let user = app.user(&["handler"], "DSU-NORTH").await;
    let claims = peek_claims(&user.token);
    let (sub, sid) = (claims["sub"].as_str().unwrap(), claims["sid"].as_str().unwrap());
    let keyring = app.state.keys.keyring();
    let (kid, pkcs8) = keyring.active_token_key();
    let now = app.clock.now().timestamp();
    let good_header = json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});

    // Sanity: a token forged with the real key and real claims is accepted, so the rejections
    // below are caused by exactly the one thing each changes.
    let genuine = forge_jwt(&good_header, &claims_for(sub, sid, now), Some(pkcs8));
    assert_eq!(me_status(&app, &genuine).await, StatusCode::OK);

    let other_key = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let mut cases: Vec<(&str, String)> = vec![
        ("garbage", "not-a-token".into()),
        ("three garbage parts", "a.b.c".into()),
        ("alg none", forge_jwt(&json!({"alg": "none", "typ": "JWT", "kid": kid}), &claims_for(sub, sid, now), None)),
        ("alg none without signature part", {
            let t = forge_jwt(&json!({"alg": "none", "typ": "JWT"}), &claims_for(sub, sid, now), None);
            t.trim_end_matches('.').to_string()
        }),
        ("signed by another key", forge_jwt(&good_header, &claims_for(sub, sid, now), Some(other_key.as_ref()))),
        (
            "unknown kid",
            forge_jwt(
                &json!({"alg": "EdDSA", "typ": "JWT", "kid": "nosuchkid"}),
                &claims_for(sub, sid, now),
                Some(pkcs8),
            ),
        ),
        ("no kid", forge_jwt(&json!({"alg": "EdDSA", "typ": "JWT"}), &claims_for(sub, sid, now), Some(pkcs8))),
        (
            "wrong aud",
            forge_jwt(
                &good_header,
                &{
                    let mut c = claims_for(sub, sid, now);
                    c["aud"] = json!("other-api");
                    c
                },
                Some(pkcs8),
            ),
        ),
        (
            "wrong iss",
            forge_jwt(
                &good_header,
                &{
                    let mut c = claims_for(sub, sid, now);
                    c["iss"] = json!("evil");
                    c
                },
                Some(pkcs8),
            ),
        ),
        (
            "expired beyond leeway",
            forge_jwt(
                &good_header,
                &{
                    let mut c = claims_for(sub, sid, now - 700);
                    c["exp"] = json!(now - 31);
                    c
                },
                Some(pkcs8),
            ),
        ),
        ("issued in the future", forge_jwt(&good_header, &claims_for(sub, sid, now + 120), Some(pkcs8))),
        (
            "missing sid",
            forge_jwt(
                &good_header,
                &{
                    let mut c = claims_for(sub, sid, now);
                    c.as_object_mut().unwrap().remove("sid");
                    c
                },
                Some(pkcs8),
            ),
        ),
        (
            "missing exp",
            forge_jwt(
                &good_header,
                &{
                    let mut c = claims_for(sub, sid, now);
                    c.as_object_mut().unwrap().remove("exp");
                    c
                },
                Some(pkcs8),
            ),
        ),
        (
            "another user's session",
            forge_jwt(&good_header, &claims_for(&uuid::Uuid::new_v4().to_string(), sid, now), Some(pkcs8)),
        ),
        (
            "made-up session",
            forge_jwt(&good_header, &claims_for(sub, &uuid::Uuid::new_v4().to_string(), now), Some(pkcs8)),
        ),
    ];
    // Payload edited after signing: swap in a payload naming another subject, keep the signature.
    let parts: Vec<&str> = user.token.split('.').collect();
    let mut edited = peek_claims(&user.token);
    edited["sub"] = json!(uuid::Uuid::new_v4().to_string());
    use base64::Engine;
    let edited_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(edited.to_string());
    cases.push(("payload edited after signing", format!("{}.{}.{}", parts[0], edited_payload, parts[2])));
    // HS256 with the public key as the HMAC secret (algorithm confusion).
    let public = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8).unwrap();
    let hs_input = {
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string());
        let c = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims_for(sub, sid, now).to_string());
        format!("{h}.{c}")
    };
    let mac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, ring::signature::KeyPair::public_key(&public).as_ref());
    let mac = ring::hmac::sign(&mac_key, hs_input.as_bytes());
    cases.push((
        "HS256 with the public key",
        format!("{hs_input}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.as_ref())),
    ));

    for (name, token) in &cases {
        assert_eq!(me_status(&app, token).await, StatusCode::UNAUTHORIZED, "{name} must be rejected");
    }
}

#[tokio::test]
async fn an_access_token_expires_with_the_clock() {
    let app = spawn_app().await;
    let user = app.user(&["controller"], "DSU-NORTH").await;
    app.clock.advance(TimeDelta::seconds(14 * 60));
    // Still inside its 15 minutes, and the session was used less than 15 minutes ago.
    assert_eq!(me_status(&app, &user.token).await, StatusCode::OK);
    app.clock.advance(TimeDelta::seconds(60 + 31));
    assert_eq!(me_status(&app, &user.token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoked_tokens_are_401_at_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    // After logout: the access token and the refresh token of the session.
    let user = app.user(&["handler"], "DSU-NORTH").await;
    let out = app.request(Method::POST, "/api/v1/auth/logout", Some(&user.token), None).await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&app, &user.token).await, StatusCode::UNAUTHORIZED);
    let refresh = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": user.refresh})).await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);

    // After a password change: the user's other sessions die, the changing one lives.
    let user = app.user(&["handler"], "DSU-NORTH").await;
    let second: serde_json::Value = app.login(&user.username, &user.password).await.json().await.unwrap();
    let second = second["access_token"].as_str().unwrap().to_string();
    let changed = app
        .post(
            "/api/v1/me/password",
            Some(&second),
            json!({"current_password": user.password, "new_password": "an entirely new secret"}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&app, &user.token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &second).await, StatusCode::OK);

    // After the user is disabled.
    let user = app.user(&["controller"], "DSU-SOUTH").await;
    let disabled = app.patch(&format!("/api/v1/users/{}", user.id), &admin, json!({"disabled": true})).await;
    assert_eq!(disabled.status(), StatusCode::OK);
    assert_eq!(me_status(&app, &user.token).await, StatusCode::UNAUTHORIZED);
    let relogin = app.login(&user.username, &user.password).await;
    assert_eq!(relogin.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_whole_session() {
    let app = spawn_app().await;
    let user = app.user(&["handler"], "DSU-NORTH").await;
    let first = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": user.refresh})).await;
    assert_eq!(first.status(), StatusCode::OK);
    let fresh: serde_json::Value = first.json().await.unwrap();
    assert_eq!(me_status(&app, fresh["access_token"].as_str().unwrap()).await, StatusCode::OK);

    // The spent token comes back (stolen copy): 401, and the fresh pair is dead too.
    let reuse = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": user.refresh})).await;
    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, fresh["access_token"].as_str().unwrap()).await, StatusCode::UNAUTHORIZED);
    let fresh_refresh = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": fresh["refresh_token"]})).await;
    assert_eq!(fresh_refresh.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &user.token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn two_concurrent_refreshes_with_one_token_give_exactly_one_200() {
    let app = spawn_app().await;
    for _ in 0..3 {
        let user = app.user(&["handler"], "DSU-NORTH").await;
        let body = json!({"refresh_token": user.refresh});
        let (a, b) = tokio::join!(
            app.post("/api/v1/auth/refresh", None, body.clone()),
            app.post("/api/v1/auth/refresh", None, body.clone())
        );
        let ok = [a.status(), b.status()].iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(ok, 1, "statuses {:?} {:?}", a.status(), b.status());
    }
}

#[tokio::test]
async fn sessions_die_when_idle_or_too_old() {
    let app = spawn_app().await;
    let idle = app.user(&["handler"], "DSU-NORTH").await;
    let busy = app.user(&["handler"], "DSU-NORTH").await;
    let mut refresh = busy.refresh.clone();
    let rotate = async |refresh: &mut String| {
        let r = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": *refresh})).await;
        let ok = r.status() == StatusCode::OK;
        if ok {
            let pair: serde_json::Value = r.json().await.unwrap();
            *refresh = pair["refresh_token"].as_str().unwrap().to_string();
        }
        ok
    };
    app.clock.advance(TimeDelta::minutes(10));
    assert!(rotate(&mut refresh).await);
    app.clock.advance(TimeDelta::minutes(6));
    // Unused for 16 minutes: the refresh token no longer revives the session.
    let r = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": idle.refresh})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(rotate(&mut refresh).await, "used 6 minutes ago: alive");

    // Kept busy (refreshed every 10 minutes), a session still ends 12 hours after login.
    let mut minutes = 16;
    while minutes < 12 * 60 - 10 {
        app.clock.advance(TimeDelta::minutes(10));
        minutes += 10;
        assert!(rotate(&mut refresh).await, "alive at {minutes} minutes");
    }
    app.clock.advance(TimeDelta::minutes(10));
    assert!(!rotate(&mut refresh).await, "a session cannot outlive 12 hours");
}
