//! People, statuses, the directory's visibility rules and /me (issue 2 §5).

use std::collections::HashSet;

use confide::domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    admin_creates_staff_and_clients_as_invited,
    only_admins_create_staff,
    clients_cannot_create_people,
    email_is_unique_per_practice_ignoring_case,
    bad_person_input_names_the_field,
    client_sees_only_the_staff_they_may_write_to,
    client_never_sees_an_email_address_but_their_own,
    nobody_sees_another_practice,
    staff_set_clients_active_or_inactive,
    inactive_is_for_clients_only,
    invited_person_is_not_activated_by_a_change,
    only_admins_disable_accounts,
    nobody_changes_their_own_role_or_status,
    only_admins_change_staff,
    directory_pages_with_an_opaque_cursor,
    clients_do_not_see_the_external_agents_group,
    own_profile_and_consents,
    weak_or_wrong_passwords_are_refused_on_change,
    a_never_accepted_invitation_is_not_reenabled,
    inactive_client_sees_only_front_office_and_billers,
    staff_withdraw_consent_but_never_grant_it,
);

async fn admin_creates_staff_and_clients_as_invited(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    for (role, email) in [
        ("provider", "pat@oak.example"),
        ("client", "casey@oak.example"),
        ("external_agent", "eve@oak.example"),
    ] {
        let (status, person) = app
            .post(
                "/api/v1/people",
                &admin,
                json!({"role": role, "name": "Some One", "email": email}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{person}");
        assert_eq!(person["status"], "invited");
        assert_eq!(person["role"], role);
        assert_eq!(person["email"], email);
        let (status, fetched) = app
            .get(
                &format!("/api/v1/people/{}", person["id"].as_str().unwrap()),
                &admin,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(fetched["id"], person["id"]);
    }
    // Staff are notified by default, clients only with consent.
    let (_, page) = app.get("/api/v1/people?role=provider", &admin).await;
    assert_eq!(page["people"][0]["consent_email"], true);
    let (_, page) = app.get("/api/v1/people?role=client", &admin).await;
    assert_eq!(page["people"][0]["consent_email"], false);
}

async fn only_admins_create_staff(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let front = app.person(&practice, Role::FrontOffice, "Fran Front").await;
    let result = app
        .post(
            "/api/v1/people",
            &front,
            json!({"role": "biller", "name": "Bo Biller", "email": "bo@oak.example"}),
        )
        .await;
    assert_problem(&result, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = app
        .post(
            "/api/v1/people",
            &front,
            json!({"role": "client", "name": "Cal Client", "email": "cal@oak.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn clients_cannot_create_people(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let result = app
        .post(
            "/api/v1/people",
            &client,
            json!({"role": "client", "name": "Friend", "email": "friend@oak.example"}),
        )
        .await;
    assert_problem(&result, StatusCode::FORBIDDEN, "forbidden");
}

async fn email_is_unique_per_practice_ignoring_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let oak = app.create_practice("oak").await;
    let elm = app.create_practice("elm").await;
    let admin = app.admin(&oak).await;
    let body = json!({"role": "client", "name": "Casey", "email": "casey@example.org"});
    assert_eq!(
        app.post("/api/v1/people", &admin, body).await.0,
        StatusCode::CREATED
    );
    let result = app
        .post(
            "/api/v1/people",
            &admin,
            json!({"role": "client", "name": "Casey 2", "email": "CASEY@Example.org"}),
        )
        .await;
    assert_problem(&result, StatusCode::CONFLICT, "email_taken");
    assert_eq!(result.1["field"], "email");
    // Another practice may have the same address.
    let elm_admin = app.admin(&elm).await;
    let (status, _) = app
        .post(
            "/api/v1/people",
            &elm_admin,
            json!({"role": "client", "name": "Casey", "email": "casey@example.org"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn bad_person_input_names_the_field(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    let cases = [
        (json!({"role": "client", "name": "A"}), "email"),
        (
            json!({"role": "client", "name": "A", "email": "nope"}),
            "email",
        ),
        (
            json!({"role": "wizard", "name": "A", "email": "a@oak.example"}),
            "role",
        ),
        (
            json!({"role": "client", "name": "   ", "email": "a@oak.example"}),
            "name",
        ),
        (
            json!({"role": "client", "name": "x".repeat(201), "email": "a@oak.example"}),
            "name",
        ),
        (
            json!({"role": "client", "name": "A", "email": "a@oak.example", "mobile": "12"}),
            "mobile",
        ),
        (
            json!({"role": "client", "name": "A", "email": "a@oak.example", "is_admin": true}),
            "is_admin",
        ),
    ];
    for (body, field) in cases {
        let result = app.post("/api/v1/people", &admin, body.clone()).await;
        assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
        assert_eq!(result.1["field"], field, "{body}");
    }
    let (_, page) = app.get("/api/v1/people", &admin).await;
    assert_eq!(
        page["people"].as_array().unwrap().len(),
        1,
        "nothing was written: {page}"
    );
    let result = app.get("/api/v1/people?role=wizard", &admin).await;
    assert_eq!(result.0, StatusCode::BAD_REQUEST, "{}", result.1);
}

/// Sets up one of each kind of person; returns (admin, client, ids by name).
async fn cast(app: &TestApp, practice: &str) -> (crate::helpers::Session, crate::helpers::Session) {
    let admin = app.admin(practice).await;
    for (role, name) in [
        (Role::Provider, "Pat Provider"),
        (Role::FrontOffice, "Fran Front"),
        (Role::Biller, "Bo Biller"),
        (Role::ExternalAgent, "Eve Agent"),
        (Role::Client, "Other Client"),
    ] {
        let email = format!(
            "{}@{practice}.example",
            name.to_lowercase().replace(' ', ".")
        );
        app.add_person(practice, role, name, &email).await;
    }
    let (status, _) = app
        .post(
            "/api/v1/people",
            &admin,
            json!({"role": "provider", "name": "Ivan Invited", "email": "ivan@oak.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let client = app.person(practice, Role::Client, "Casey Client").await;
    (admin, client)
}

fn names(page: &Value) -> HashSet<String> {
    page["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

async fn client_sees_only_the_staff_they_may_write_to(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let (admin, client) = cast(&app, &practice).await;
    let (status, page) = app.get("/api/v1/people", &client).await;
    assert_eq!(status, StatusCode::OK);
    let expected: HashSet<String> = ["Pat Provider", "Fran Front", "Bo Biller", "Casey Client"]
        .map(String::from)
        .into();
    assert_eq!(names(&page), expected);
    // Staff see everyone.
    let (_, page) = app.get("/api/v1/people", &admin).await;
    assert_eq!(names(&page).len(), 8);
    // Hidden people are not found, not forbidden: their existence is not revealed.
    let (_, all) = app.get("/api/v1/people", &admin).await;
    for person in all["people"].as_array().unwrap() {
        let name = person["name"].as_str().unwrap();
        let result = app
            .get(
                &format!("/api/v1/people/{}", person["id"].as_str().unwrap()),
                &client,
            )
            .await;
        if expected.contains(name) {
            assert_eq!(result.0, StatusCode::OK, "{name}");
        } else {
            assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
        }
    }
}

async fn client_never_sees_an_email_address_but_their_own(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let (_, client) = cast(&app, &practice).await;
    let (_, page) = app.get("/api/v1/people", &client).await;
    for person in page["people"].as_array().unwrap() {
        let is_self = person["id"] == client.id.as_str();
        assert_eq!(person.get("email").is_some(), is_self, "{person}");
        if !is_self {
            assert!(!person.to_string().contains('@'), "{person}");
        }
    }
    let (_, groups) = app.get("/api/v1/groups", &client).await;
    assert!(!groups.to_string().contains('@'));
}

async fn nobody_sees_another_practice(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let oak = app.create_practice("oak").await;
    let elm = app.create_practice("elm").await;
    let oak_admin = app.admin(&oak).await;
    let elm_admin = app.admin(&elm).await;
    let (_, page) = app.get("/api/v1/people", &oak_admin).await;
    assert_eq!(names(&page).len(), 1);
    let result = app.person_of(&oak_admin, &elm_admin.id).await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
    let result = app
        .update_person(&oak_admin, &elm_admin.id, json!({"name": "Hijacked"}))
        .await;
    assert_problem(&result, StatusCode::NOT_FOUND, "not_found");
}

async fn staff_set_clients_active_or_inactive(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let front = app.person(&practice, Role::FrontOffice, "Fran Front").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let path = format!("/api/v1/people/{}", client.id);
    let (status, body) = app
        .patch(&path, &front, json!({"status": "inactive"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "inactive");
    // An inactive client still signs in and reads their own profile.
    assert_eq!(app.me(&client).await.1["status"], "inactive");
    let (status, body) = app.patch(&path, &front, json!({"status": "active"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "active");
}

async fn inactive_is_for_clients_only(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let result = app
        .update_person(&admin, &provider.id, json!({"status": "inactive"}))
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "status_not_allowed");
    assert_eq!(result.1["field"], "status");
}

async fn invited_person_is_not_activated_by_a_change(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    let (_, invited) = app
        .post(
            "/api/v1/people",
            &admin,
            json!({"role": "client", "name": "Ivy", "email": "ivy@oak.example"}),
        )
        .await;
    let path = format!("/api/v1/people/{}", invited["id"].as_str().unwrap());
    let result = app.patch(&path, &admin, json!({"status": "active"})).await;
    assert_problem(&result, StatusCode::CONFLICT, "invitation_pending");
    let (status, body) = app
        .patch(&path, &admin, json!({"status": "disabled"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "disabled");
}

async fn only_admins_disable_accounts(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let path = format!("/api/v1/people/{}", client.id);
    let result = app
        .patch(&path, &provider, json!({"status": "disabled"}))
        .await;
    assert_problem(&result, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        app.patch(&path, &admin, json!({"status": "disabled"}))
            .await
            .0,
        StatusCode::OK
    );
    let result = app
        .patch(&path, &provider, json!({"status": "active"}))
        .await;
    assert_problem(&result, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        app.patch(&path, &admin, json!({"status": "active"}))
            .await
            .0,
        StatusCode::OK
    );
}

async fn nobody_changes_their_own_role_or_status(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    let path = format!("/api/v1/people/{}", admin.id);
    let result = app
        .patch(&path, &admin, json!({"status": "disabled"}))
        .await;
    assert_problem(&result, StatusCode::FORBIDDEN, "cannot_change_own_account");
    let result = app.patch(&path, &admin, json!({"role": "biller"})).await;
    assert_problem(&result, StatusCode::FORBIDDEN, "cannot_change_own_account");
    let (status, body) = app
        .patch(&path, &admin, json!({"name": "Avery A. Admin"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "Avery A. Admin");
}

async fn only_admins_change_staff(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    let provider = app.person(&practice, Role::Provider, "Pat Provider").await;
    let biller = app.person(&practice, Role::Biller, "Bo Biller").await;
    let result = app
        .update_person(&provider, &biller.id, json!({"name": "X"}))
        .await;
    assert_problem(&result, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = app
        .update_person(&admin, &biller.id, json!({"role": "front_office"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["role"], "front_office");
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let result = app
        .update_person(&admin, &client.id, json!({"role": "provider"}))
        .await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "role_change_not_allowed");
}

async fn directory_pages_with_an_opaque_cursor(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    for i in 0..7 {
        let (status, _) = app
            .post("/api/v1/people", &admin, json!({"role": "client", "name": format!("Client {i}"), "email": format!("c{i}@oak.example")}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/people?limit=3&cursor={c}"),
            None => "/api/v1/people?limit=3".to_string(),
        };
        let (status, page) = app.get(&path, &admin).await;
        assert_eq!(status, StatusCode::OK);
        let people = page["people"].as_array().unwrap();
        assert!(people.len() <= 3);
        seen.extend(people.iter().map(|p| p["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 8);
    let result = app.get("/api/v1/people?cursor=%25%25garbage", &admin).await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(result.1["field"], "cursor");
}

async fn clients_do_not_see_the_external_agents_group(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let (admin, client) = cast(&app, &practice).await;
    let ids = |v: &Value| {
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (status, groups) = app.get("/api/v1/groups", &client).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ids(&groups),
        ["group:providers", "group:front_office", "group:billers"]
    );
    assert!(groups["groups"][0].get("active_members").is_none());
    let (_, groups) = app.get("/api/v1/groups", &admin).await;
    assert_eq!(
        ids(&groups),
        [
            "group:providers",
            "group:front_office",
            "group:billers",
            "group:external_agents"
        ]
    );
    // One active provider; the invited one does not count.
    assert_eq!(groups["groups"][0]["active_members"], 1);
}

async fn own_profile_and_consents(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let (status, me) = app.me(&client).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["consent_email"], false);
    assert_eq!(me["practice"]["slug"], "oak");
    let result = app.update_me(&client, json!({"consent_sms": true})).await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    assert_eq!(result.1["field"], "consent_sms");
    let (status, me) = app
        .update_me(
            &client,
            json!({"consent_email": true, "consent_sms": true, "mobile": "+1 555 010 9999"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["mobile"], "+15550109999");
    assert_eq!(me["consent_sms"], true);
    let result = app.update_me(&client, json!({"status": "active"})).await;
    assert_problem(&result, StatusCode::BAD_REQUEST, "invalid_field");
    let (status, me) = app
        .update_me(&client, json!({"mobile": null, "consent_sms": false}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(me.get("mobile").is_none(), "{me}");
}

async fn weak_or_wrong_passwords_are_refused_on_change(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    let result = app
        .post("/api/v1/me/password", &admin, json!({"current_password": "guess-guess-guess", "new_password": "saffron-glacier-lattice-41"}))
        .await;
    assert_problem(
        &result,
        StatusCode::BAD_REQUEST,
        "current_password_incorrect",
    );
    for weak in ["short-1", "password1234", "avery-admin-2024!"] {
        let result = app
            .post(
                "/api/v1/me/password",
                &admin,
                json!({"current_password": crate::helpers::PASSWORD, "new_password": weak}),
            )
            .await;
        assert_problem(&result, StatusCode::BAD_REQUEST, "weak_password");
        assert_eq!(result.1["field"], "new_password");
    }
}

async fn a_never_accepted_invitation_is_not_reenabled(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    let (_, invited) = app
        .post(
            "/api/v1/people",
            &admin,
            json!({"role": "client", "name": "Ivy", "email": "ivy@oak.example"}),
        )
        .await;
    let path = format!("/api/v1/people/{}", invited["id"].as_str().unwrap());
    assert_eq!(
        app.patch(&path, &admin, json!({"status": "disabled"}))
            .await
            .0,
        StatusCode::OK
    );
    let result = app.patch(&path, &admin, json!({"status": "active"})).await;
    assert_problem(&result, StatusCode::CONFLICT, "invitation_pending");
    let (_, person) = app.get(&path, &admin).await;
    assert_eq!(person["status"], "disabled");
}

async fn inactive_client_sees_only_front_office_and_billers(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let (admin, client) = cast(&app, &practice).await;
    let (status, _) = app
        .update_person(&admin, &client.id, json!({"status": "inactive"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = app.get("/api/v1/people", &client).await;
    let expected: HashSet<String> = ["Fran Front", "Bo Biller", "Casey Client"]
        .map(String::from)
        .into();
    assert_eq!(names(&page), expected);
    let (_, groups) = app.get("/api/v1/groups", &client).await;
    let ids: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["group:front_office", "group:billers"]);
}

/// The review's finding: a biller switched on a client's notification consents and set their
/// mobile number. Consent is the client's own act: staff may withdraw it, never grant it; a
/// number staff enter withdraws SMS consent; each change is audited with who made it.
async fn staff_withdraw_consent_but_never_grant_it(backend: Backend) {
    let (app, practice) = TestApp::with_practice(backend).await;
    let admin = app.admin(&practice).await;
    let biller = app.person(&practice, Role::Biller, "Bo Biller").await;
    let client = app.person(&practice, Role::Client, "Casey Client").await;
    let path = format!("/api/v1/people/{}", client.id);
    for (who, body, field) in [
        (&biller, json!({"consent_email": true}), "consent_email"),
        (
            &biller,
            json!({"consent_sms": true, "mobile": "+1 555 010 7777"}),
            "consent_sms",
        ),
        (&admin, json!({"consent_email": true}), "consent_email"),
    ] {
        let result = app.patch(&path, who, body).await;
        assert_problem(&result, StatusCode::FORBIDDEN, "consent_is_personal");
        assert_eq!(result.1["field"], field);
    }
    let (_, person) = app.get(&path, &admin).await;
    assert_eq!(person["consent_email"], false);
    assert_eq!(person["consent_sms"], false);
    assert!(person.get("mobile").is_none(), "nothing partial: {person}");

    // The client grants both; a biller may withdraw one.
    let (status, _) = app
        .update_me(
            &client,
            json!({"consent_email": true, "consent_sms": true, "mobile": "+1 555 010 9999"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, person) = app
        .patch(&path, &biller, json!({"consent_email": false}))
        .await;
    assert_eq!(status, StatusCode::OK, "{person}");
    assert_eq!(person["consent_email"], false);
    assert_eq!(person["consent_sms"], true);
    // Nor can staff carry the consent over to a number of their choosing.
    let result = app
        .patch(
            &path,
            &biller,
            json!({"mobile": "+1 555 010 6666", "consent_sms": true}),
        )
        .await;
    assert_problem(&result, StatusCode::FORBIDDEN, "consent_is_personal");
    assert_eq!(result.1["field"], "consent_sms");
    // A number staff enter has not been consented to: SMS consent lapses with it.
    let (status, person) = app
        .patch(&path, &biller, json!({"mobile": "+1 555 010 7777"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{person}");
    assert_eq!(person["mobile"], "+15550107777");
    assert_eq!(person["consent_sms"], false);

    let mut conn = app.state.store.read().await.unwrap();
    let changes: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, actor_id FROM audit_events \
         WHERE object_id = $1 AND action LIKE '%consent%' ORDER BY seq",
    )
    .bind(&client.id)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(
        changes,
        [
            ("grant_consent_email".to_string(), client.id.clone()),
            ("grant_consent_sms".to_string(), client.id.clone()),
            ("withdraw_consent_email".to_string(), biller.id.clone()),
            ("withdraw_consent_sms".to_string(), biller.id.clone()),
        ]
    );
}
