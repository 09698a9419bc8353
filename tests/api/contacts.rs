//! Contacts, grading, status drift, amendments, reviews and the track record.

use chrono::TimeDelta;
use diesel::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;
use crate::world::*;

pub fn contact(occurred_at: &str, items: Vec<Value>) -> Value {
    json!({"occurred_at": occurred_at, "duration_minutes": 45, "contact_type": "meeting", "location": "Safe house B",
           "summary": "Discussed convoy timings on the northern route.", "tasking": "Confirm the departure day.",
           "welfare_concerns": null, "intelligence": items})
}

pub fn item(scheme: &str, source: &str, information: &str, handling: Option<&str>, conditions: Option<&str>) -> Value {
    json!({"content": "Convoy leaves on Thursdays.", "grading": {"scheme": scheme, "source": source, "information": information,
           "handling": handling, "handling_conditions": conditions}})
}

impl TestApp {
    pub async fn log_contact(&self, token: &str, source: &str, body: Value) -> reqwest::Response {
        self.post(&format!("/api/v1/sources/{source}/contacts"), Some(token), body).await
    }
}

async fn setup() -> (TestApp, TestUser, TestUser, String) {
    let app = spawn_app().await;
    let handler = app.user(&["handler"], UNIT).await;
    let controller = app.user(&["controller"], UNIT).await;
    let s = app.register(&handler.token, identity("Contact Person", None), false).await;
    (app, handler, controller, s["id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_handler_logs_a_contact_with_graded_items() {
    let (app, handler, controller, s) = setup().await;
    let now = rfc3339(app.clock.now() - TimeDelta::hours(1));
    let items = vec![
        item("4x4", "B", "2", Some("H3"), Some("Not to the prosecutor without consent")),
        item("admiralty", "C", "3", None, None),
    ];
    let r = app.log_contact(&handler.token, &s, contact(&now, items)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let c = body(r).await;
    assert_eq!(c["source_id"], s.as_str());
    assert_eq!(c["summary"], "Discussed convoy timings on the northern route.");
    assert_eq!(c["recorded_by"], handler.id.as_str());
    assert_eq!(c["intelligence"].as_array().unwrap().len(), 2);
    assert_eq!(c["intelligence"][0]["grading"]["handling_conditions"], "Not to the prosecutor without consent");
    assert_eq!(c["intelligence"][1]["grading"]["scheme"], "admiralty");
    assert!(c["intelligence"][1]["grading"]["handling"].is_null());
    assert_eq!(c["amendments"], json!([]));
    let fetched =
        body(app.get(&format!("/api/v1/contacts/{}", c["id"].as_str().unwrap()), &controller.token).await).await;
    assert_eq!(fetched, c, "a controller of the unit reads the same contact");
    // Controllers do not log contacts; the future is refused.
    assert_eq!(app.log_contact(&controller.token, &s, contact(&now, vec![])).await.status(), StatusCode::FORBIDDEN);
    let future = rfc3339(app.clock.now() + TimeDelta::minutes(6));
    let r = app.log_contact(&handler.token, &s, contact(&future, vec![])).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body(r).await["errors"].get("occurred_at").is_some());
    let skewed = rfc3339(app.clock.now() + TimeDelta::minutes(4));
    assert_eq!(app.log_contact(&handler.token, &s, contact(&skewed, vec![])).await.status(), StatusCode::CREATED);
    let before_registration = rfc3339(app.clock.now() - TimeDelta::days(400));
    assert_eq!(
        app.log_contact(&handler.token, &s, contact(&before_registration, vec![])).await.status(),
        StatusCode::CREATED
    );
    let too_many: Vec<Value> = (0..51).map(|_| item("4x4", "A", "1", Some("H0"), None)).collect();
    let r = app.log_contact(&handler.token, &s, contact(&now, too_many)).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut long = contact(&now, vec![]);
    long["summary"] = json!("s".repeat(20_001));
    assert_eq!(app.log_contact(&handler.token, &s, long).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

fn valid_items(
    scheme: &str,
    sources: &[&str],
    infos: &[&str],
    handlings: &[Option<&str>],
    conditional: Option<&str>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for s in sources {
        for i in infos {
            for h in handlings {
                let conditions = (*h == conditional && conditional.is_some()).then_some("stated conditions");
                out.push(item(scheme, s, i, *h, conditions));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_grade_of_every_scheme_is_checked() {
    let (app, handler, _, s) = setup().await;
    let at = rfc3339(app.clock.now());
    let valid = [
        valid_items(
            "4x4",
            &["A", "B", "C", "X"],
            &["1", "2", "3", "4"],
            &[Some("H0"), Some("H1"), Some("H2"), Some("H3")],
            Some("H3"),
        ),
        valid_items("3x5x2", &["1", "2", "3"], &["A", "B", "C", "D", "E"], &[Some("P"), Some("C")], Some("C")),
        valid_items("admiralty", &["A", "B", "C", "D", "E", "F"], &["1", "2", "3", "4", "5", "6"], &[None], None),
    ];
    let mut accepted = 0;
    for items in valid {
        for chunk in items.chunks(50) {
            let r = app.log_contact(&handler.token, &s, contact(&at, chunk.to_vec())).await;
            assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
            accepted += chunk.len();
        }
    }
    assert_eq!(accepted, 64 + 30 + 36);
    // Scheme omitted: 4x4.
    let mut default = item("4x4", "A", "1", Some("H0"), None);
    default["grading"].as_object_mut().unwrap().remove("scheme");
    let r = app.log_contact(&handler.token, &s, contact(&at, vec![default])).await;
    assert_eq!(body(r).await["intelligence"][0]["grading"]["scheme"], "4x4");

    let invalid = [
        (item("4x4", "D", "1", Some("H0"), None), "source"),
        (item("4x4", "a", "1", Some("H0"), None), "source"),
        (item("4x4", "1", "1", Some("H0"), None), "source"),
        (item("4x4", "A", "5", Some("H0"), None), "information"),
        (item("4x4", "A", "A", Some("H0"), None), "information"),
        (item("4x4", "A", "1", None, None), "handling"),
        (item("4x4", "A", "1", Some("h1"), None), "handling"),
        (item("4x4", "A", "1", Some("P"), None), "handling"),
        (item("4x4", "A", "1", Some("H3"), None), "handling_conditions"),
        (item("4x4", "A", "1", Some("H1"), Some("x")), "handling_conditions"),
        (item("3x5x2", "4", "A", Some("P"), None), "source"),
        (item("3x5x2", "A", "A", Some("P"), None), "source"),
        (item("3x5x2", "1", "F", Some("P"), None), "information"),
        (item("3x5x2", "1", "a", Some("P"), None), "information"),
        (item("3x5x2", "1", "A", None, None), "handling"),
        (item("3x5x2", "1", "A", Some("H0"), None), "handling"),
        (item("3x5x2", "1", "A", Some("C"), None), "handling_conditions"),
        (item("3x5x2", "1", "A", Some("P"), Some("x")), "handling_conditions"),
        (item("admiralty", "G", "1", None, None), "source"),
        (item("admiralty", "X", "1", None, None), "source"),
        (item("admiralty", "A", "7", None, None), "information"),
        (item("admiralty", "A", "0", None, None), "information"),
        (item("admiralty", "A", "1", Some("H0"), None), "handling"),
        (item("admiralty", "A", "1", None, Some("x")), "handling_conditions"),
        (item("5x5x5", "A", "1", None, None), "scheme"),
    ];
    for (bad, field) in invalid {
        let items = vec![item("4x4", "A", "1", Some("H0"), None), bad.clone()];
        let r = app.log_contact(&handler.token, &s, contact(&at, items)).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let problem = body(r).await;
        let path = format!("intelligence[1].grading.{field}");
        assert!(problem["errors"].get(&path).is_some(), "{path} not named for {bad}: {problem}");
    }
}

#[tokio::test]
async fn contacts_outside_every_authorisation_are_status_drift() {
    let (app, handler, controller, s) = setup().await;
    let compliance = app.user(&["compliance"], "AUDIT").await;
    let before = rfc3339(app.clock.now() - TimeDelta::hours(2));
    let drifted = body(app.log_contact(&handler.token, &s, contact(&before, vec![])).await).await;
    assert_eq!(drifted["flags"], json!(["status_drift"]), "before any authorisation");
    let auth = app.authorise(&controller.token, &s).await;
    let inside = rfc3339(app.clock.now() + TimeDelta::seconds(1));
    app.clock.advance(TimeDelta::seconds(2));
    let ok = body(app.log_contact(&handler.token, &s, contact(&inside, vec![])).await).await;
    assert_eq!(ok["flags"], json!([]), "inside an authorisation");
    app.clock.advance(TimeDelta::minutes(2));
    let cancel = format!("/api/v1/sources/{s}/authorisations/{}/cancel", auth["id"].as_str().unwrap());
    assert_eq!(app.post(&cancel, Some(&controller.token), json!({"reason": "paused"})).await.status(), StatusCode::OK);
    app.clock.advance(TimeDelta::minutes(1));
    let after = rfc3339(app.clock.now());
    let after_cancel = body(app.log_contact(&handler.token, &s, contact(&after, vec![])).await).await;
    assert_eq!(after_cancel["flags"], json!(["status_drift"]), "after cancellation");
    let source = body(app.get(&format!("/api/v1/sources/{s}"), &controller.token).await).await;
    assert!(source["flags"].as_array().unwrap().contains(&json!("status_drift")));
    app.settle_audit(false);
    let events = body(
        app.get(&format!("/api/v1/audit/events?action=contact.status_drift&source_id={s}"), &compliance.token).await,
    )
    .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 2);
    // Amending occurred_at into the authorised window clears the contact's flag; the source's stays.
    let amend = format!("/api/v1/contacts/{}/amendments", after_cancel["id"].as_str().unwrap());
    let r = app
        .post(
            &amend,
            Some(&handler.token),
            json!({"field": "occurred_at", "new_value": inside, "reason": "wrong day entered"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let c = body(app.get(&format!("/api/v1/contacts/{}", after_cancel["id"].as_str().unwrap()), &handler.token).await)
        .await;
    assert_eq!(c["flags"], json!([]));
    let source = body(app.get(&format!("/api/v1/sources/{s}"), &controller.token).await).await;
    assert!(source["flags"].as_array().unwrap().contains(&json!("status_drift")), "never cleared");
}

#[derive(diesel::QueryableByName, PartialEq, Debug)]
struct RawContact {
    #[diesel(sql_type = diesel::sql_types::Binary)]
    location: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::Binary)]
    summary: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::Binary)]
    tasking: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::Binary)]
    welfare_concerns: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    occurred_at: chrono::NaiveDateTime,
}

#[tokio::test]
async fn amendments_keep_the_previous_value_and_never_touch_the_original() {
    let (app, handler, controller, s) = setup().await;
    let at = rfc3339(app.clock.now() - TimeDelta::hours(3));
    let c = body(app.log_contact(&handler.token, &s, contact(&at, vec![])).await).await;
    let id = c["id"].as_str().unwrap().to_string();
    let raw = |app: &TestApp| -> RawContact {
        let mut conn = app.db();
        diesel::sql_query(format!(
            "SELECT location, summary, tasking, welfare_concerns, occurred_at FROM contacts WHERE id = '{id}'"
        ))
        .get_result(&mut *conn)
        .unwrap()
    };
    let original = raw(&app);
    let path = format!("/api/v1/contacts/{id}/amendments");
    let r = app
        .post(
            &path,
            Some(&handler.token),
            json!({"field": "summary", "new_value": "Convoy timings, corrected.", "reason": "typo"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let a = body(r).await;
    assert_eq!(a["previous_value"], "Discussed convoy timings on the northern route.");
    assert_eq!(a["new_value"], "Convoy timings, corrected.");
    assert_eq!(a["amended_by"], handler.id.as_str());
    let r = app
        .post(
            &path,
            Some(&controller.token),
            json!({"field": "duration_minutes", "new_value": 30, "reason": "checked the log"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED, "controllers of the unit may amend");
    let r = app
        .post(
            &path,
            Some(&handler.token),
            json!({"field": "welfare_concerns", "new_value": "Fears being followed", "reason": "late report"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let shown = body(app.get(&format!("/api/v1/contacts/{id}"), &handler.token).await).await;
    assert_eq!(shown["summary"], "Convoy timings, corrected.");
    assert_eq!(shown["duration_minutes"], 30);
    assert_eq!(shown["welfare_concerns"], "Fears being followed");
    assert_eq!(shown["amendments"].as_array().unwrap().len(), 3);
    assert_eq!(shown["amendments"][0]["previous_value"], "Discussed convoy timings on the northern route.");
    assert_eq!(raw(&app), original, "the original ciphertext bytes are untouched");
    for (field, value) in [("recorded_by", json!("x")), ("intelligence", json!([])), ("source_id", json!("x"))] {
        let r = app.post(&path, Some(&handler.token), json!({"field": field, "new_value": value, "reason": "r"})).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert!(body(r).await["errors"].get("field").is_some());
    }
    for (field, value) in [
        ("summary", json!("")),
        ("duration_minutes", json!(-1)),
        ("contact_type", json!("visit")),
        ("occurred_at", json!("yesterday")),
    ] {
        let r = app.post(&path, Some(&handler.token), json!({"field": field, "new_value": value, "reason": "r"})).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{field}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_contacts_page_through_exactly_once_despite_ties() {
    let (app, handler, _, s) = setup().await;
    let base = app.clock.now() - TimeDelta::days(10);
    // Ten distinct times, a hundred contacts each.
    let bodies: Vec<Value> = (0..1000).map(|i| contact(&rfc3339(base + TimeDelta::minutes(i % 10)), vec![])).collect();
    let mut created = std::collections::HashSet::new();
    for chunk in bodies.chunks(10) {
        let results =
            futures_util::future::join_all(chunk.iter().map(|b| app.log_contact(&handler.token, &s, b.clone()))).await;
        for r in results {
            assert_eq!(r.status(), StatusCode::CREATED);
            created.insert(body(r).await["id"].as_str().unwrap().to_string());
        }
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut last_time: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/sources/{s}/contacts?limit=37&cursor={c}"),
            None => format!("/api/v1/sources/{s}/contacts?limit=37"),
        };
        let page = body(app.get(&path, &handler.token).await).await;
        for c in page["items"].as_array().unwrap() {
            let t = c["occurred_at"].as_str().unwrap().to_string();
            assert!(last_time.as_ref().is_none_or(|l| *l >= t), "newest occurred_at first");
            last_time = Some(t);
            seen.push(c["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let unique: std::collections::HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), 1000, "every contact once");
    assert_eq!(unique, created);
}

#[tokio::test]
async fn reviews_grade_in_the_schemes_source_scale_and_fall_due() {
    let (app, handler, controller, s) = setup().await;
    let c = controller.token.as_str();
    let path = format!("/api/v1/sources/{s}/reviews");
    let due = |days: i64| rfc3339(app.clock.now() + TimeDelta::days(days));
    let r = app
        .post(
            &path,
            Some(c),
            json!({"grade": "B", "rationale": "Reliable in 9 of 10 reports", "next_review_due": due(90)}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let review = body(r).await;
    assert_eq!(review["scheme"], "4x4");
    assert_eq!(review["rationale"], "Reliable in 9 of 10 reports");
    assert_eq!(review["reviewed_by"], controller.id.as_str());
    for (scheme, grade) in
        [("4x4", "D"), ("4x4", "1"), ("3x5x2", "A"), ("3x5x2", "4"), ("admiralty", "X"), ("admiralty", "1")]
    {
        let r = app
            .post(
                &path,
                Some(c),
                json!({"scheme": scheme, "grade": grade, "rationale": "r", "next_review_due": due(30)}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{scheme} {grade}");
        assert!(body(r).await["errors"].get("grade").is_some());
    }
    let r = app.post(&path, Some(c), json!({"grade": "A", "rationale": "r", "next_review_due": due(-1)})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.post(&path, Some(&handler.token), json!({"grade": "A", "rationale": "r", "next_review_due": due(5)}))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let r = app
        .post(
            &path,
            Some(c),
            json!({"scheme": "admiralty", "grade": "C", "rationale": "Mixed record", "next_review_due": due(10)}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let history = body(app.get(&path, &handler.token).await).await;
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert_eq!(history[0]["scheme"], "admiralty", "newest first");
    let source = body(app.get(&format!("/api/v1/sources/{s}"), c).await).await;
    assert_eq!(source["reliability"]["scheme"], "admiralty");
    assert_eq!(source["reliability"]["grade"], "C");

    let due_list = body(app.get("/api/v1/reviews/due?within_days=30", c).await).await;
    let entry = due_list["items"].as_array().unwrap().iter().find(|i| i["source_id"] == s.as_str()).cloned().unwrap();
    assert!(entry["reasons"].as_array().unwrap().contains(&json!("review_due")));
    let none = body(app.get("/api/v1/reviews/due?within_days=5", c).await).await;
    assert!(
        none["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["source_id"] != s.as_str() || !i["reasons"].as_array().unwrap().contains(&json!("review_due")))
    );
    app.clock.advance(TimeDelta::days(11));
    let controller = app.user(&["controller"], UNIT).await;
    let source = body(app.get(&format!("/api/v1/sources/{s}"), &controller.token).await).await;
    assert!(source["flags"].as_array().unwrap().contains(&json!("review_overdue")));
    let overdue = body(app.get("/api/v1/reviews/due", &controller.token).await).await;
    let entry = overdue["items"].as_array().unwrap().iter().find(|i| i["source_id"] == s.as_str()).cloned().unwrap();
    assert!(entry["reasons"].as_array().unwrap().contains(&json!("review_overdue")));
    let handler_again = body(app.login(&handler.username, &handler.password).await).await;
    let handler_token = handler_again["access_token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/reviews/due", handler_token).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/api/v1/reviews/due?within_days=-1", &controller.token).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let other = app.user(&["controller"], OTHER_UNIT).await;
    let theirs = body(app.get("/api/v1/reviews/due", &other.token).await).await;
    assert!(theirs["items"].as_array().unwrap().is_empty(), "another unit's sources are not listed");
}

#[tokio::test]
async fn the_track_record_is_computed_from_the_contacts() {
    let (app, handler, controller, s) = setup().await;
    let t1 = app.clock.now() - TimeDelta::days(40);
    let t2 = app.clock.now() - TimeDelta::days(3);
    let items = vec![
        item("4x4", "B", "2", Some("H0"), None),
        item("4x4", "B", "2", Some("H1"), None),
        item("admiralty", "A", "1", None, None),
    ];
    app.log_contact(&handler.token, &s, contact(&rfc3339(t1), items)).await;
    app.log_contact(&handler.token, &s, contact(&rfc3339(t2), vec![item("4x4", "C", "4", Some("H0"), None)])).await;
    app.post(
        &format!("/api/v1/sources/{s}/reviews"),
        Some(&controller.token),
        json!({"grade": "B", "rationale": "ok", "next_review_due": rfc3339(app.clock.now() + TimeDelta::days(60))}),
    )
    .await;
    let tr = body(app.get(&format!("/api/v1/sources/{s}/track-record"), &handler.token).await).await;
    assert_eq!(tr["total_contacts"], 2);
    assert_eq!(tr["total_items"], 4);
    assert_eq!(tr["days_since_last_contact"], 3);
    let grades = tr["items_by_grade"].as_array().unwrap();
    let count = |scheme: &str, s: &str, i: &str| {
        grades
            .iter()
            .find(|g| g["scheme"] == scheme && g["source"] == s && g["information"] == i)
            .map(|g| g["count"].clone())
    };
    assert_eq!(count("4x4", "B", "2"), Some(json!(2)));
    assert_eq!(count("4x4", "C", "4"), Some(json!(1)));
    assert_eq!(count("admiralty", "A", "1"), Some(json!(1)));
    let handling = tr["items_by_handling"].as_array().unwrap();
    assert!(handling.iter().any(|h| h["scheme"] == "4x4" && h["handling"] == "H0" && h["count"] == 2));
    assert!(handling.iter().any(|h| h["scheme"] == "admiralty" && h["handling"].is_null() && h["count"] == 1));
    let months: Vec<&str> =
        tr["contacts_per_month"].as_array().unwrap().iter().map(|m| m["month"].as_str().unwrap()).collect();
    assert_eq!(months.len(), if t1.format("%Y-%m").to_string() == t2.format("%Y-%m").to_string() { 1 } else { 2 });
    assert_eq!(tr["latest_review"]["grade"], "B");
    let outsider = app.user(&["handler"], UNIT).await;
    assert_eq!(
        app.get(&format!("/api/v1/sources/{s}/track-record"), &outsider.token).await.status(),
        StatusCode::NOT_FOUND
    );
}
