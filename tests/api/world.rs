//! A populated world for source tests: two units, a source with every kind of relation to it,
//! and helpers to register sources and grant authorisations.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

pub const UNIT: &str = "DSU-NORTH";
pub const OTHER_UNIT: &str = "DSU-SOUTH";
pub const PURPOSE: &str = "OP-SAHEL-7: monthly welfare check";

pub fn identity(name: &str, dob: Option<&str>) -> Value {
    json!({"legal_name": name, "aliases": ["Le Vieux"], "date_of_birth": dob, "nationality": "ML",
           "phone": "+223 70 00 00 00", "address": "Quartier du Fleuve, Gao", "notes": "Met through a cousin."})
}

impl TestApp {
    /// Any request with the access-purpose header set.
    pub async fn with_purpose(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req =
            self.client.request(method, self.url(path)).bearer_auth(token).header("X-Access-Purpose", PURPOSE);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    pub async fn register(&self, token: &str, identity: Value, juvenile: bool) -> Value {
        let r = self
            .post(
                "/api/v1/sources",
                Some(token),
                json!({"risk_level": "medium", "juvenile": juvenile, "identity": identity}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
        r.json().await.unwrap()
    }

    pub async fn assign(&self, controller: &str, source: &str, user_id: &str, role: &str) -> Value {
        let r = self
            .post(
                &format!("/api/v1/sources/{source}/assignments"),
                Some(controller),
                json!({"user_id": user_id, "role": role}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
        r.json().await.unwrap()
    }

    pub async fn authorise(&self, controller: &str, source: &str) -> Value {
        let from = crate::world::rfc3339(self.clock.now());
        let r = self
            .post(
                &format!("/api/v1/sources/{source}/authorisations"),
                Some(controller),
                json!({"purpose": "Disrupt trafficking route", "valid_from": from}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
        r.json().await.unwrap()
    }
}

pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Every relation a caller can have to source `s` (API.md, issue "need-to-know matrix").
pub struct World {
    pub s: String,
    pub t: String,
    pub ended_assignment: String,
    pub authorisation: String,
    pub handler: TestUser,
    pub co_handler: TestUser,
    pub ended_handler: TestUser,
    pub other_handler: TestUser,
    pub controller_assigned: TestUser,
    pub controller_unit: TestUser,
    pub controller_other: TestUser,
    pub dual_unit: TestUser,
    pub dual_other: TestUser,
    pub compliance: TestUser,
    pub admin: String,
}

pub async fn world(app: &TestApp) -> World {
    let handler = app.user(&["handler"], UNIT).await;
    let co_handler = app.user(&["handler"], UNIT).await;
    let ended_handler = app.user(&["handler"], UNIT).await;
    let other_handler = app.user(&["handler"], UNIT).await;
    let controller_assigned = app.user(&["controller"], UNIT).await;
    let controller_unit = app.user(&["controller"], UNIT).await;
    let controller_other = app.user(&["controller"], OTHER_UNIT).await;
    let dual_unit = app.user(&["handler", "controller"], UNIT).await;
    let dual_other = app.user(&["handler", "controller"], OTHER_UNIT).await;
    let compliance = app.user(&["compliance"], "AUDIT").await;
    let admin = app.admin_token().await;

    let s = app.register(&handler.token, identity("Amadou Traoré", Some("1980-04-12")), false).await;
    let s = s["id"].as_str().unwrap().to_string();
    let t = app.register(&other_handler.token, identity("Fatoumata Keïta", None), false).await;
    let t = t["id"].as_str().unwrap().to_string();
    let c = &controller_unit.token;
    app.assign(c, &s, &co_handler.id, "co_handler").await;
    app.assign(c, &s, &controller_assigned.id, "controller").await;
    let ended = app.assign(c, &s, &ended_handler.id, "handler").await;
    let ended_assignment = ended["id"].as_str().unwrap().to_string();
    let r = app
        .request(Method::DELETE, &format!("/api/v1/sources/{s}/assignments/{ended_assignment}"), Some(c), None)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let authorisation = app.authorise(c, &s).await["id"].as_str().unwrap().to_string();
    World {
        s,
        t,
        ended_assignment,
        authorisation,
        handler,
        co_handler,
        ended_handler,
        other_handler,
        controller_assigned,
        controller_unit,
        controller_other,
        dual_unit,
        dual_other,
        compliance,
        admin,
    }
}
