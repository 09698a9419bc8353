//! Sources: registration, identity, deconfliction, status, assignments, authorisations.

use std::collections::HashSet;

use chrono::TimeDelta;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;
use crate::world::*;

#[tokio::test]
async fn registration_gives_urn_pseudonym_and_an_assignment_and_never_the_identity() {
    let app = spawn_app().await;
    let handler = app.user(&["handler"], UNIT).await;
    let controller = app.user(&["controller"], UNIT).await;
    let s = app.register(&handler.token, identity("Ousmane Cissé", Some("1975-01-02")), false).await;
    let year = chrono::Datelike::year(&app.clock.now());
    assert_eq!(s["urn"], format!("{UNIT}-{year}-00001"));
    assert!(s["pseudonym"].as_str().unwrap().split(' ').count() == 2);
    assert_eq!(s["status"], "pending");
    assert_eq!(s["unit"], UNIT);
    assert_eq!(s["registered_by"], handler.id.as_str());
    assert_eq!(s["assignments"][0]["role"], "handler");
    assert_eq!(s["assignments"][0]["user_id"], handler.id.as_str());
    assert!(s["authorisation"].is_null());
    assert!(s.get("identity").is_none() && !s.to_string().contains("Ousmane"));
    let c = app.register(&controller.token, identity("Awa Coulibaly", None), false).await;
    assert_eq!(c["urn"], format!("{UNIT}-{year}-00002"));
    assert_eq!(c["assignments"][0]["role"], "controller", "a controller registering gets a controller assignment");
}

#[tokio::test]
async fn juvenile_must_agree_with_the_date_of_birth_and_bad_identities_are_422() {
    let app = spawn_app().await;
    let handler = app.user(&["handler"], UNIT).await;
    let teen = (app.clock.now() - TimeDelta::days(365 * 15)).date_naive().to_string();
    let cases = [
        (json!({"risk_level": "low", "juvenile": false, "identity": identity("A B", Some(&teen))}), "juvenile"),
        (json!({"risk_level": "low", "juvenile": true, "identity": identity("A B", Some("1970-01-01"))}), "juvenile"),
        (json!({"risk_level": "extreme", "juvenile": false, "identity": identity("A B", None)}), "risk_level"),
        (json!({"risk_level": "low", "juvenile": false, "identity": {"legal_name": ""}}), "identity.legal_name"),
        (
            json!({"risk_level": "low", "juvenile": false, "identity": {"legal_name": "x".repeat(201)}}),
            "identity.legal_name",
        ),
        (
            json!({"risk_level": "low", "juvenile": false, "identity": {"legal_name": "A", "notes": "n".repeat(10_001)}}),
            "identity.notes",
        ),
        (
            json!({"risk_level": "low", "juvenile": false, "identity": {"legal_name": "A", "aliases": vec!["a"; 21]}}),
            "identity.aliases",
        ),
        (
            json!({"risk_level": "low", "juvenile": false, "identity": {"legal_name": "A", "date_of_birth": "12/04/1980"}}),
            "identity.date_of_birth",
        ),
        (json!({"risk_level": "low", "juvenile": false, "identity": {"legal_name": "A", "ssn": "1"}}), "identity.ssn"),
        (json!({"risk_level": "low", "identity": {"legal_name": "A"}}), "juvenile"),
    ];
    for (payload, field) in cases {
        let r = app.post("/api/v1/sources", Some(&handler.token), payload.clone()).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{payload}");
        let problem = body(r).await;
        assert!(problem["errors"].get(field).is_some(), "{field} not named in {problem}");
    }
    let ok = app.register(&handler.token, identity("A B", Some(&teen)), true).await;
    assert_eq!(ok["juvenile"], true);
}

#[tokio::test]
async fn identity_needs_a_purpose_and_an_assignment() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let path = format!("/api/v1/sources/{}/identity", w.s);
    let no_purpose = app.get(&path, &w.handler.token).await;
    assert_eq!(no_purpose.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body(no_purpose).await["type"], "access-purpose-required");
    let short = app
        .client
        .get(app.url(&path))
        .bearer_auth(&w.handler.token)
        .header("X-Access-Purpose", "why")
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    let id = body(app.with_purpose(Method::GET, &path, &w.handler.token, None).await).await;
    assert_eq!(id["legal_name"], "Amadou Traoré");
    assert_eq!(id["date_of_birth"], "1980-04-12");
    assert_eq!(id["aliases"], json!(["Le Vieux"]));
    assert_eq!(
        app.with_purpose(Method::GET, &path, &w.ended_handler.token, None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.with_purpose(Method::GET, &path, &w.controller_unit.token, None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get(&format!("/api/v1/sources/{}", w.s), &w.controller_unit.token).await.status(), StatusCode::OK);
    assert_eq!(app.with_purpose(Method::GET, &path, &w.controller_assigned.token, None).await.status(), StatusCode::OK);

    // Replacing the identity: the whole object, audited with the purpose.
    let new = identity("Amadou Traoré dit Baba", Some("1980-04-12"));
    let put = app.with_purpose(Method::PUT, &path, &w.co_handler.token, Some(new.clone())).await;
    assert_eq!(put.status(), StatusCode::OK);
    let id = body(app.with_purpose(Method::GET, &path, &w.handler.token, None).await).await;
    assert_eq!(id["legal_name"], "Amadou Traoré dit Baba");
    app.settle_audit(false);
    let events = body(
        app.get(&format!("/api/v1/audit/events?source_id={}&action=source.identity.update", w.s), &w.compliance.token)
            .await,
    )
    .await;
    let e = &events["items"][0];
    assert_eq!(e["purpose"], PURPOSE);
    assert_eq!(e["actor_id"], w.co_handler.id.as_str());
    assert!(!events.to_string().contains("Baba"), "no decrypted value in the trail");
}

#[tokio::test]
async fn fifty_parallel_registrations_get_distinct_urns_and_pseudonyms() {
    let app = spawn_app().await;
    let handlers = futures_util::future::join_all((0..5).map(|_| app.user(&["handler"], UNIT))).await;
    let regs = (0..50).map(|i| {
        let token = handlers[i % 5].token.clone();
        let app = &app;
        async move {
            app.post(
                "/api/v1/sources",
                Some(&token),
                json!({"risk_level": "low", "juvenile": false, "identity": identity(&format!("Person {i}"), None)}),
            )
            .await
        }
    });
    let results = futures_util::future::join_all(regs).await;
    let mut urns = HashSet::new();
    let mut pseudonyms = HashSet::new();
    for r in results {
        let status = r.status();
        let s = body(r).await;
        assert_eq!(status, StatusCode::CREATED, "{s}");
        urns.insert(s["urn"].as_str().unwrap().to_string());
        pseudonyms.insert(s["pseudonym"].as_str().unwrap().to_string());
    }
    assert_eq!(urns.len(), 50);
    assert_eq!(pseudonyms.len(), 50);
    let year = chrono::Datelike::year(&app.clock.now());
    for n in 1..=50 {
        assert!(urns.contains(&format!("{UNIT}-{year}-{n:05}")), "URNs are gap-free: {n} missing");
    }
}

#[tokio::test]
async fn the_status_machine_refuses_every_illegal_transition() {
    let app = spawn_app().await;
    let handler = app.user(&["handler"], UNIT).await;
    let controller = app.user(&["controller"], UNIT).await;
    let c = controller.token.as_str();
    let s = app.register(&handler.token, identity("Status Person", None), false).await;
    let id = s["id"].as_str().unwrap();
    let status = |to: &'static str| {
        let app = &app;
        let path = format!("/api/v1/sources/{id}/status");
        async move { app.post(&path, Some(c), json!({"status": to, "reason": "probe"})).await.status() }
    };
    // pending: only active (with an authorisation) or deactivated.
    assert_eq!(status("pending").await, StatusCode::CONFLICT);
    assert_eq!(status("suspended").await, StatusCode::CONFLICT);
    assert_eq!(status("active").await, StatusCode::CONFLICT, "activation without an authorisation in force");
    app.authorise(c, id).await;
    assert_eq!(status("active").await, StatusCode::OK);
    assert_eq!(status("active").await, StatusCode::CONFLICT);
    assert_eq!(status("pending").await, StatusCode::CONFLICT);
    assert_eq!(status("suspended").await, StatusCode::OK);
    assert_eq!(status("suspended").await, StatusCode::CONFLICT);
    assert_eq!(status("pending").await, StatusCode::CONFLICT);
    assert_eq!(status("active").await, StatusCode::OK);
    assert_eq!(status("deactivated").await, StatusCode::OK);
    for to in ["deactivated", "suspended", "pending"] {
        assert_eq!(status(to).await, StatusCode::CONFLICT, "deactivated -> {to}");
    }
    // Reactivation: allowed to a controller, flagged for good, and recorded for auditors.
    assert_eq!(status("active").await, StatusCode::OK);
    let view = body(app.get(&format!("/api/v1/sources/{id}"), c).await).await;
    assert_eq!(view["status"], "active");
    assert!(view["flags"].as_array().unwrap().contains(&json!("reactivated")));
    assert_eq!(
        app.post(
            &format!("/api/v1/sources/{id}/status"),
            Some(&handler.token),
            json!({"status": "suspended", "reason": "x"})
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    let compliance = app.user(&["compliance"], "AUDIT").await;
    app.settle_audit(false);
    let events = body(
        app.get(&format!("/api/v1/audit/events?action=source.status.reactivated&source_id={id}"), &compliance.token)
            .await,
    )
    .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 1);
    // An active source whose authorisation has lapsed is flagged.
    app.clock.advance(TimeDelta::days(366));
    let controller = app.user(&["controller"], UNIT).await;
    let view = body(app.get(&format!("/api/v1/sources/{id}"), &controller.token).await).await;
    assert!(view["flags"].as_array().unwrap().contains(&json!("authorisation_expired")), "{view}");
    assert!(view["authorisation"].is_null());
}

#[tokio::test]
async fn authorisation_periods_are_capped_and_separation_of_duties_holds() {
    let app = spawn_app().await;
    let handler = app.user(&["handler"], UNIT).await;
    let controller = app.user(&["controller"], UNIT).await;
    let dual = app.user(&["handler", "controller"], UNIT).await;
    let adult = app.register(&handler.token, identity("Adult Person", Some("1990-01-01")), false).await;
    let teen_dob = (app.clock.now() - TimeDelta::days(365 * 16)).date_naive().to_string();
    let minor = app.register(&handler.token, identity("Young Person", Some(&teen_dob)), true).await;
    let now = app.clock.now();
    let from = rfc3339(now);
    let grant = |source: &str, token: &str, body: serde_json::Value| {
        let (app, path, token) = (&app, format!("/api/v1/sources/{source}/authorisations"), token.to_string());
        async move { app.post(&path, Some(&token), body).await }
    };
    let a = adult["id"].as_str().unwrap();
    let m = minor["id"].as_str().unwrap();
    let c = controller.token.as_str();
    let twelve = rfc3339(now.checked_add_months(chrono::Months::new(12)).unwrap());
    let twelve_and_a_day = rfc3339(now.checked_add_months(chrono::Months::new(12)).unwrap() + TimeDelta::days(1));
    let four = rfc3339(now.checked_add_months(chrono::Months::new(4)).unwrap());
    let five = rfc3339(now.checked_add_months(chrono::Months::new(5)).unwrap());
    let ok = grant(a, c, json!({"purpose": "p", "valid_from": from, "valid_until": twelve})).await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let ok = body(ok).await;
    assert_eq!(ok["purpose"], "p");
    assert_eq!(ok["granted_by"], controller.id.as_str());
    assert!(ok["cancelled_at"].is_null());
    let r = grant(a, c, json!({"purpose": "p", "valid_from": from, "valid_until": twelve_and_a_day})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body(r).await["errors"].get("valid_until").is_some());
    let default = body(grant(m, c, json!({"purpose": "p", "valid_from": from})).await).await;
    assert_eq!(default["valid_until"], four.as_str(), "juvenile default: 4 months");
    assert_eq!(
        grant(m, c, json!({"purpose": "p", "valid_from": from, "valid_until": five})).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let backdated = rfc3339(now - TimeDelta::hours(73));
    assert_eq!(
        grant(a, c, json!({"purpose": "p", "valid_from": backdated})).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let urgent = rfc3339(now - TimeDelta::hours(71));
    assert_eq!(grant(a, c, json!({"purpose": "p", "valid_from": urgent})).await.status(), StatusCode::CREATED);
    // A controller who also runs the source as handler may not authorise it.
    app.assign(c, a, &dual.id, "co_handler").await;
    let r = grant(a, &dual.token, json!({"purpose": "p", "valid_from": from})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Cancelling: once, with a reason.
    let aid = ok["id"].as_str().unwrap();
    let cancel = format!("/api/v1/sources/{a}/authorisations/{aid}/cancel");
    let r = app.post(&cancel, Some(c), json!({"reason": "Source moved away"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let cancelled = body(r).await;
    assert!(cancelled["cancelled_at"].is_string());
    assert_eq!(app.post(&cancel, Some(c), json!({"reason": "again"})).await.status(), StatusCode::CONFLICT);
    let list = body(app.get(&format!("/api/v1/sources/{a}/authorisations"), &handler.token).await).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn deconfliction_flags_both_sources_for_their_controllers_only() {
    let app = spawn_app().await;
    let north_handler = app.user(&["handler"], UNIT).await;
    let south_handler = app.user(&["handler"], OTHER_UNIT).await;
    let north_controller = app.user(&["controller"], UNIT).await;
    let south_controller = app.user(&["controller"], OTHER_UNIT).await;
    // Same person, written differently: case, spacing, and composed vs decomposed accents.
    let a = app.register(&north_handler.token, identity("Mariam  Diarra-Touré", Some("1988-07-30")), false).await;
    let b = app.register(&south_handler.token, identity("mariam diarra-toure\u{301}", Some("1988-07-30")), false).await;
    assert!(
        !b["flags"].as_array().unwrap().contains(&json!("duplicate_suspected")),
        "never in the registration response"
    );
    let flags = |token: &str, id: &serde_json::Value| {
        let (app, token, path) = (&app, token.to_string(), format!("/api/v1/sources/{}", id.as_str().unwrap()));
        async move {
            let v = body(app.get(&path, &token).await).await;
            v["flags"].as_array().unwrap().contains(&json!("duplicate_suspected"))
        }
    };
    assert!(flags(&north_controller.token, &a["id"]).await);
    assert!(flags(&south_controller.token, &b["id"]).await);
    assert!(!flags(&north_handler.token, &a["id"]).await, "never to handlers");
    assert!(!flags(&south_handler.token, &b["id"]).await, "never to handlers");
    // A different date of birth: no match.
    let c = app.register(&north_handler.token, identity("Mariam Diarra-Touré", Some("1988-07-31")), false).await;
    assert!(!flags(&north_controller.token, &c["id"]).await);
    // No date of birth: no index, no match.
    let d = app.register(&north_handler.token, identity("Mariam Diarra-Touré", None), false).await;
    assert!(!flags(&north_controller.token, &d["id"]).await);
    let compliance = app.user(&["compliance"], "AUDIT").await;
    app.settle_audit(false);
    let events = body(app.get("/api/v1/audit/events?action=source.deconfliction.match", &compliance.token).await).await;
    let items = events["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["source_id"], b["id"]);
    assert_eq!(items[0]["resource_id"], a["id"]);
}

#[tokio::test]
async fn assignments_keep_history_refuse_self_assignment_and_end_when_a_user_moves() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let handler = app.user(&["handler"], UNIT).await;
    let other = app.user(&["handler"], UNIT).await;
    let controller = app.user(&["controller"], UNIT).await;
    let south = app.user(&["handler"], OTHER_UNIT).await;
    let analyst = app.user(&["compliance"], UNIT).await;
    let s = app.register(&handler.token, identity("History Person", None), false).await;
    let id = s["id"].as_str().unwrap();
    let path = format!("/api/v1/sources/{id}/assignments");
    let c = controller.token.as_str();
    let refused = [
        (json!({"user_id": controller.id, "role": "controller"}), "self-assignment"),
        (json!({"user_id": south.id, "role": "handler"}), "other unit"),
        (json!({"user_id": analyst.id, "role": "handler"}), "lacks the role"),
        (json!({"user_id": other.id, "role": "controller"}), "handler as controller"),
        (json!({"user_id": other.id, "role": "boss"}), "unknown role"),
    ];
    for (payload, why) in refused {
        assert_eq!(app.post(&path, Some(c), payload).await.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
    }
    let a = app.assign(c, id, &other.id, "co_handler").await;
    assert_eq!(
        app.post(&path, Some(c), json!({"user_id": other.id, "role": "co_handler"})).await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(app.get(&format!("/api/v1/sources/{id}"), &other.token).await.status(), StatusCode::OK);

    // The co-handler moves to another unit: the assignment ends at once, and so does access.
    let moved = app.patch(&format!("/api/v1/users/{}", other.id), &admin, json!({"unit": OTHER_UNIT})).await;
    assert_eq!(moved.status(), StatusCode::OK);
    assert_eq!(app.get(&format!("/api/v1/sources/{id}"), &other.token).await.status(), StatusCode::NOT_FOUND);
    let history = body(app.get(&path, c).await).await;
    let entry = history.as_array().unwrap().iter().find(|x| x["id"] == a["id"]).unwrap();
    assert!(entry["ended_at"].is_string(), "ended, and kept in the history: {entry}");
    // Losing the handler role ends the handler's assignment too.
    app.patch(&format!("/api/v1/users/{}", handler.id), &admin, json!({"roles": ["compliance"]})).await;
    let history = body(app.get(&path, c).await).await;
    assert!(history.as_array().unwrap().iter().all(|x| x["ended_at"].is_string()), "{history}");
    // Ending by hand keeps the row; ending twice is a conflict.
    let b = app.assign(c, id, &app.user(&["handler"], UNIT).await.id, "handler").await;
    let end = format!("{path}/{}", b["id"].as_str().unwrap());
    assert_eq!(app.request(Method::DELETE, &end, Some(c), None).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.request(Method::DELETE, &end, Some(c), None).await.status(), StatusCode::CONFLICT);
    assert_eq!(body(app.get(&path, c).await).await.as_array().unwrap().len(), 3, "registrant, co-handler, new handler");
}

#[tokio::test]
async fn a_shredded_source_answers_410_and_other_sources_are_untouched() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let other = app.register(&w.handler.token, identity("Untouched Person", None), false).await;
    let other_id = other["id"].as_str().unwrap().to_string();
    let s = uuid::Uuid::parse_str(&w.s).unwrap();
    {
        let mut conn = app.db();
        let ctx = humint::http::context::RequestContext::system();
        app.state.keys.shred_source_key(&mut conn, &ctx, None, s, app.clock.now()).unwrap();
    }
    let identity_path = format!("/api/v1/sources/{}/identity", w.s);
    let gone = app.with_purpose(Method::GET, &identity_path, &w.handler.token, None).await;
    assert_eq!(gone.status(), StatusCode::GONE);
    let problem = body(gone).await;
    assert_eq!(problem["type"], "key-destroyed");
    assert!(!problem.to_string().contains("Traoré"));
    let auths = app.get(&format!("/api/v1/sources/{}/authorisations", w.s), &w.handler.token).await;
    assert_eq!(auths.status(), StatusCode::GONE);
    // The pseudonymised record stays (it holds nothing sealed); other sources read as before.
    assert_eq!(app.get(&format!("/api/v1/sources/{}", w.s), &w.handler.token).await.status(), StatusCode::OK);
    let other_identity =
        app.with_purpose(Method::GET, &format!("/api/v1/sources/{other_id}/identity"), &w.handler.token, None).await;
    assert_eq!(other_identity.status(), StatusCode::OK);
    assert_eq!(body(other_identity).await["legal_name"], "Untouched Person");
}

#[tokio::test]
async fn ciphertext_moved_between_rows_or_sources_is_an_integrity_error_without_data() {
    use diesel::RunQueryDsl;
    let app = spawn_app().await;
    let handler = app.user(&["handler"], UNIT).await;
    let a = app.register(&handler.token, identity("Victim One", None), false).await;
    let b = app.register(&handler.token, identity("Victim Two", None), false).await;
    let (a, b) = (a["id"].as_str().unwrap().to_string(), b["id"].as_str().unwrap().to_string());
    let read = |id: String| {
        let (app, token) = (&app, handler.token.clone());
        async move { app.with_purpose(Method::GET, &format!("/api/v1/sources/{id}/identity"), &token, None).await }
    };
    assert_eq!(read(a.clone()).await.status(), StatusCode::OK);
    let sql = |s: String| {
        let mut conn = app.db();
        diesel::sql_query(s).execute(&mut *conn).unwrap();
    };
    // Another source's name, copied over this source's (both sealed under their own keys).
    sql(format!(
        "UPDATE source_identities SET legal_name = (SELECT legal_name FROM source_identities WHERE source_id = '{a}') WHERE source_id = '{b}'"
    ));
    // This source's own phone number copied into its address column (same key, other column).
    sql(format!("UPDATE source_identities SET address = phone WHERE source_id = '{a}'"));
    for id in [a.clone(), b.clone()] {
        let r = read(id).await;
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = r.text().await.unwrap();
        assert!(text.contains("integrity-error"), "{text}");
        assert!(!text.contains("Victim") && !text.contains("+223"), "no data in the error: {text}");
    }
    // A contact row moved to another source (its owner changed in the database).
    let at = rfc3339(app.clock.now());
    let c = app
        .post(&format!("/api/v1/sources/{a}/contacts"), Some(&handler.token), crate::contacts::contact(&at, vec![]))
        .await;
    let c = body(c).await["id"].as_str().unwrap().to_string();
    assert_eq!(app.get(&format!("/api/v1/contacts/{c}"), &handler.token).await.status(), StatusCode::OK);
    sql(format!("UPDATE contacts SET source_id = '{b}' WHERE id = '{c}'"));
    let r = app.get(&format!("/api/v1/contacts/{c}"), &handler.token).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = r.text().await.unwrap();
    assert!(text.contains("integrity-error") && !text.contains("convoy"), "{text}");
}
