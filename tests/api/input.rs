//! Hostile and malformed input: always a 4xx with a problem body, never a 5xx.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

async fn raw(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    bytes: Vec<u8>,
) -> reqwest::Response {
    let mut req = app.client.post(app.url(path)).body(bytes);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn malformed_json_is_400_and_wrong_content_type_is_415() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for bad in [&b"{"[..], b"{\"username\": }", b"\xff\xfe", b"", b"[1,2", b"nul"] {
        let r = raw(&app, "/api/v1/auth/login", None, Some("application/json"), bad.to_vec()).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let r = raw(&app, "/api/v1/users", Some(&admin), Some("application/json"), deep.into_bytes()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "nesting beyond the parser's limit");
    for ct in [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("application/jsonx")] {
        let r = raw(&app, "/api/v1/auth/login", None, ct, br#"{"username":"a","password":"b"}"#.to_vec()).await;
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
    }
    let ok = raw(
        &app,
        "/api/v1/auth/login",
        None,
        Some("application/json; charset=utf-8"),
        br#"{"username":"abc","password":"b"}"#.to_vec(),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::UNAUTHORIZED, "a charset parameter is fine");
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let big = json!({"username": "x".repeat(65 * 1024), "password": "y"}).to_string().into_bytes();
    let r = raw(&app, "/api/v1/auth/login", None, Some("application/json"), big.clone()).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = raw(&app, "/api/v1/users", Some(&admin), Some("application/json"), big).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Chunked (no Content-Length): the limit holds while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..70).map(|_| Ok(vec![b' '; 1024])).collect();
    let stream = futures_util::stream::iter(chunks);
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn wrong_shapes_are_422_naming_the_field() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let good = json!({"username": "new.user", "display_name": "New", "password": "long enough pass", "roles": ["handler"], "unit": "DSU-NORTH"});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases = vec![
        ("username", without("username")),
        ("username", with("username", json!("Has Capitals"))),
        ("username", with("username", json!("x".repeat(65)))),
        ("username", with("username", json!(42))),
        ("display_name", with("display_name", json!("d".repeat(101)))),
        ("password", with("password", json!("short"))),
        ("password", with("password", json!("p".repeat(129)))),
        ("roles", with("roles", json!([]))),
        ("roles[0]", with("roles", json!(["root"]))),
        ("unit", with("unit", json!("lower-case"))),
        ("unit", with("unit", json!("U".repeat(33)))),
        ("extra", with("extra", json!(true))),
    ];
    for (field, payload) in cases {
        let r = app.post("/api/v1/users", Some(&admin), payload.clone()).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{payload}");
        let problem = body(r).await;
        assert!(problem["errors"].get(field).is_some(), "expected `{field}` named in {problem}");
    }
    let r = app.post("/api/v1/users", Some(&admin), json!([1, 2, 3])).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.post("/api/v1/auth/login", None, json!({"username": "u".repeat(65), "password": "x"})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body(r).await["errors"].get("username").is_some());
}

#[tokio::test]
async fn precedence_401_then_403_then_body_errors() {
    let app = spawn_app().await;
    let handler = app.user(&["handler"], "DSU-NORTH").await;
    // No token and a bad body: 401 wins.
    let r = raw(&app, "/api/v1/users", None, Some("text/plain"), b"{".to_vec()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Wrong role and a bad body: 403 wins.
    let r = raw(&app, "/api/v1/users", Some(&handler.token), Some("text/plain"), b"{".to_vec()).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let huge = vec![b'{'; 100 * 1024];
    let r = raw(&app, "/api/v1/users", Some(&handler.token), Some("application/json"), huge).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A missing user with a body of the wrong shape: 404 before 422.
    let admin = app.admin_token().await;
    let r = app.patch(&format!("/api/v1/users/{}", uuid::Uuid::new_v4()), &admin, json!({"nonsense": 1})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn hostile_strings_and_paths_never_cause_a_5xx() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let nasty = [
        "'; DROP TABLE users; --",
        "\u{0}",
        "\u{202e}evil",
        "../../etc/passwd",
        "%00",
        "😀".repeat(40).as_str(),
        "\\\"\\u0000",
    ]
    .map(str::to_string);
    for s in &nasty {
        let r = app.login(s, s).await;
        assert!(r.status().is_client_error(), "login {s:?}: {}", r.status());
        let r = app.post("/api/v1/users", Some(&admin), json!({"username": s, "display_name": s, "password": "long enough pass", "roles": ["handler"], "unit": s})).await;
        assert!(r.status().is_client_error(), "create {s:?}: {}", r.status());
        let r = app.request(Method::GET, &format!("/api/v1/users/{}", urlencode(s)), Some(&admin), None).await;
        assert!(r.status().is_client_error(), "get {s:?}: {}", r.status());
    }
    for path in ["/api/v1/nothing", "/api/v1/users/../me", "/api/v1//users", "/x%00y"] {
        let r = app.request(Method::GET, path, Some(&admin), None).await;
        assert!(r.status().is_client_error() || r.status().is_success(), "{path}: {}", r.status());
    }
    let r = app.request(Method::DELETE, "/api/v1/users", Some(&admin), None).await;
    assert!(r.status().is_client_error());
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_a_request_id() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::GET, "/healthz"),
        (Method::GET, "/api/v1/me"),
        (Method::GET, "/nope"),
        (Method::POST, "/api/v1/auth/login"),
    ] {
        let r = app.request(method, path, None, None).await;
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(h["content-security-policy"].to_str().unwrap().contains("default-src 'none'"), "{path}");
        assert!(!h["x-request-id"].is_empty(), "{path}");
    }
    let r = app.client.get(app.url("/healthz")).header("X-Request-Id", "trace-abc-123").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-abc-123");
    let r = app.client.get(app.url("/healthz")).header("X-Request-Id", "bad id with spaces").send().await.unwrap();
    assert_ne!(r.headers()["x-request-id"], "bad id with spaces");
}
