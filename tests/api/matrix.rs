//! The need-to-know matrix: every source endpoint × every role and relation × an existing and a
//! missing source, against the expected status. Requests are chosen so that an allowed caller
//! gets a status a denied one never can (e.g. 409 for an illegal transition, 422 for a body the
//! endpoint rejects after access), so each case proves the decision, not just a status code.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;
use crate::world::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The pseudonymised view and what hangs off it: assigned handlers and controllers of the unit.
    View,
    /// The true identity: assigned handlers, controllers with a controller assignment.
    Identity,
    /// Controller work: controllers of the unit; other roles 403.
    Manage,
    /// Logging a contact: assigned handlers and co-handlers; roles without `handler` 403.
    LogContact,
    /// Amending a contact: its handlers and the unit's controllers.
    Amend,
}

struct Endpoint {
    name: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    kind: Kind,
    /// What an allowed caller gets.
    allowed: StatusCode,
}

fn endpoints(w: &World, source: &str, contact: &str) -> Vec<Endpoint> {
    let e = |name, method, path: String, body, kind, allowed| Endpoint { name, method, path, body, kind, allowed };
    let stale = rfc3339(chrono::Utc::now() - chrono::TimeDelta::days(10));
    let future = rfc3339(chrono::Utc::now() + chrono::TimeDelta::days(1));
    vec![
        e("get source", Method::GET, format!("/api/v1/sources/{source}"), None, Kind::View, StatusCode::OK),
        e(
            "get identity",
            Method::GET,
            format!("/api/v1/sources/{source}/identity"),
            None,
            Kind::Identity,
            StatusCode::OK,
        ),
        e(
            "put identity",
            Method::PUT,
            format!("/api/v1/sources/{source}/identity"),
            Some(identity("Amadou Traoré", Some("1980-04-12"))),
            Kind::Identity,
            StatusCode::OK,
        ),
        e(
            "change status (to pending: always illegal)",
            Method::POST,
            format!("/api/v1/sources/{source}/status"),
            Some(json!({"status": "pending", "reason": "matrix probe"})),
            Kind::Manage,
            StatusCode::CONFLICT,
        ),
        e(
            "list assignments",
            Method::GET,
            format!("/api/v1/sources/{source}/assignments"),
            None,
            Kind::View,
            StatusCode::OK,
        ),
        e(
            "assign a user who does not exist",
            Method::POST,
            format!("/api/v1/sources/{source}/assignments"),
            Some(json!({"user_id": uuid::Uuid::new_v4(), "role": "handler"})),
            Kind::Manage,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        e(
            "end an ended assignment",
            Method::DELETE,
            format!("/api/v1/sources/{source}/assignments/{}", w.ended_assignment),
            None,
            Kind::Manage,
            StatusCode::CONFLICT,
        ),
        e(
            "grant a backdated authorisation",
            Method::POST,
            format!("/api/v1/sources/{source}/authorisations"),
            Some(json!({"purpose": "probe", "valid_from": stale})),
            Kind::Manage,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        e(
            "list authorisations",
            Method::GET,
            format!("/api/v1/sources/{source}/authorisations"),
            None,
            Kind::View,
            StatusCode::OK,
        ),
        e(
            "log a contact in the future",
            Method::POST,
            format!("/api/v1/sources/{source}/contacts"),
            Some(crate::contacts::contact(&future, vec![])),
            Kind::LogContact,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        e("list contacts", Method::GET, format!("/api/v1/sources/{source}/contacts"), None, Kind::View, StatusCode::OK),
        e("get a contact", Method::GET, format!("/api/v1/contacts/{contact}"), None, Kind::View, StatusCode::OK),
        e(
            "amend a field that is not amendable",
            Method::POST,
            format!("/api/v1/contacts/{contact}/amendments"),
            Some(json!({"field": "recorded_by", "new_value": "x", "reason": "matrix probe"})),
            Kind::Amend,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        e(
            "review with a grade outside the scheme",
            Method::POST,
            format!("/api/v1/sources/{source}/reviews"),
            Some(json!({"grade": "Z", "rationale": "probe", "next_review_due": future})),
            Kind::Manage,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        e("list reviews", Method::GET, format!("/api/v1/sources/{source}/reviews"), None, Kind::View, StatusCode::OK),
        e(
            "track record",
            Method::GET,
            format!("/api/v1/sources/{source}/track-record"),
            None,
            Kind::View,
            StatusCode::OK,
        ),
        e(
            "cancel without a reason",
            Method::POST,
            format!("/api/v1/sources/{source}/authorisations/{}/cancel", w.authorisation),
            Some(json!({})),
            Kind::Manage,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ]
}

/// A caller and what the rules of DESIGN.md say it may do with the source.
struct Caller {
    name: &'static str,
    token: String,
    view: bool,
    identity: bool,
    manage: bool,
    source_role: bool,
    controller_role: bool,
    handler_role: bool,
    log: bool,
}

fn expected(caller: &Caller, endpoint: &Endpoint, exists: bool) -> StatusCode {
    // Role gates first (403), then need-to-know (404), then the endpoint's own answer.
    if !caller.source_role
        || (endpoint.kind == Kind::Manage && !caller.controller_role)
        || (endpoint.kind == Kind::LogContact && !caller.handler_role)
    {
        return StatusCode::FORBIDDEN;
    }
    let allowed = exists
        && match endpoint.kind {
            Kind::View => caller.view,
            Kind::Identity => caller.identity,
            Kind::Manage => caller.manage,
            Kind::LogContact => caller.log,
            Kind::Amend => caller.view,
        };
    if allowed { endpoint.allowed } else { StatusCode::NOT_FOUND }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_need_to_know_matrix() {
    let app = spawn_app().await;
    let w = world(&app).await;
    // handler role and "may log" follow from the relations: only assigned handlers log.
    let c = |name, user: &'_ TestUser, view, identity, manage, source_role, controller_role| Caller {
        name,
        token: user.token.clone(),
        view,
        identity,
        manage,
        source_role,
        controller_role,
        handler_role: false,
        log: false,
    };
    let handler = |mut caller: Caller, log| {
        caller.handler_role = true;
        caller.log = log;
        caller
    };
    let callers = vec![
        handler(c("assigned handler", &w.handler, true, true, false, true, false), true),
        handler(c("co-handler", &w.co_handler, true, true, false, true, false), true),
        handler(c("handler whose assignment ended", &w.ended_handler, false, false, false, true, false), false),
        handler(c("handler of another source in the unit", &w.other_handler, false, false, false, true, false), false),
        c("controller with a controller assignment", &w.controller_assigned, true, true, true, true, true),
        c("controller of the unit without assignment", &w.controller_unit, true, false, true, true, true),
        c("controller of another unit", &w.controller_other, false, false, false, true, true),
        handler(c("handler+controller of the unit, unassigned", &w.dual_unit, true, false, true, true, true), false),
        handler(c("handler+controller of another unit", &w.dual_other, false, false, false, true, true), false),
        c("compliance", &w.compliance, false, false, false, false, false),
        Caller {
            name: "admin",
            token: w.admin.clone(),
            view: false,
            identity: false,
            manage: false,
            source_role: false,
            controller_role: false,
            handler_role: false,
            log: false,
        },
    ];
    let missing = uuid::Uuid::new_v4().to_string();
    let at = rfc3339(app.clock.now());
    let logged = app
        .post(
            &format!("/api/v1/sources/{}/contacts", w.s),
            Some(&w.handler.token),
            crate::contacts::contact(&at, vec![]),
        )
        .await;
    assert_eq!(logged.status(), StatusCode::CREATED);
    let contact = body(logged).await["id"].as_str().unwrap().to_string();
    let missing_contact = uuid::Uuid::new_v4().to_string();
    app.settle_audit(false);
    let events_before = audit_count(&app);
    let mut cases = 0;
    let mut failures = Vec::new();
    let mut not_found_bodies = std::collections::BTreeSet::new();
    for (exists, source, contact) in
        [(true, w.s.as_str(), contact.as_str()), (false, missing.as_str(), missing_contact.as_str())]
    {
        for endpoint in endpoints(&w, source, contact) {
            for caller in &callers {
                let want = expected(caller, &endpoint, exists);
                let r = app
                    .with_purpose(endpoint.method.clone(), &endpoint.path, &caller.token, endpoint.body.clone())
                    .await;
                let got = r.status();
                let text = r.text().await.unwrap();
                if got == StatusCode::NOT_FOUND {
                    not_found_bodies.insert(text.clone());
                }
                cases += 1;
                if got != want {
                    failures.push(format!(
                        "{} / {} / exists={exists}: want {want}, got {got}: {text}",
                        endpoint.name, caller.name
                    ));
                }
            }
        }
    }
    println!("need-to-know matrix: {cases} cases");
    assert!(failures.is_empty(), "{} of {cases} cases failed:\n{}", failures.len(), failures.join("\n"));
    assert!(cases >= 300);
    assert_eq!(
        not_found_bodies.len(),
        1,
        "a hidden source and a missing one must answer the same body: {not_found_bodies:?}"
    );

    // Every request left exactly one audit event, and the chain verifies.
    app.settle_audit(false);
    assert_eq!(audit_count(&app) - events_before, cases as i64, "one audit event per request");
    let v = body(app.get("/api/v1/audit/verify", &w.compliance.token).await).await;
    assert_eq!(v["valid"], true, "{v}");
}

fn audit_count(app: &TestApp) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.db();
    diesel::sql_query("SELECT COUNT(*) AS n FROM audit_events").get_result::<N>(&mut *conn).unwrap().n
}

#[tokio::test]
async fn lists_show_exactly_the_sources_a_caller_may_know() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let ids = |v: Value| -> Vec<String> {
        v["items"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
    };
    let list = |token: String| {
        let app = &app;
        async move { ids(body(app.get("/api/v1/sources?limit=200", &token).await).await) }
    };
    let mut both = vec![w.s.clone(), w.t.clone()];
    both.sort();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(list(w.handler.token.clone()).await, vec![w.s.clone()]);
    assert_eq!(list(w.co_handler.token.clone()).await, vec![w.s.clone()]);
    assert!(list(w.ended_handler.token.clone()).await.is_empty());
    assert_eq!(list(w.other_handler.token.clone()).await, vec![w.t.clone()]);
    assert_eq!(sorted(list(w.controller_unit.token.clone()).await), both);
    assert_eq!(sorted(list(w.dual_unit.token.clone()).await), both);
    assert!(list(w.controller_other.token.clone()).await.is_empty());
    assert!(list(w.dual_other.token.clone()).await.is_empty());
    assert_eq!(app.get("/api/v1/sources", &w.compliance.token).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/sources", &w.admin).await.status(), StatusCode::FORBIDDEN);
    // Lists and views never carry identity fields.
    let text = app.get("/api/v1/sources", &w.controller_unit.token).await.text().await.unwrap();
    for secret in ["Traoré", "Keïta", "1980-04-12", "Gao", "cousin", "legal_name"] {
        assert!(!text.contains(secret), "list leaks {secret}");
    }
}
