//! Settings and the staff actions on a thread, without JavaScript.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestApp, PASSWORD};
use crate::web::WebUser;
use crate::{on_both_backends, user};

on_both_backends!(
    a_person_changes_name_mobile_and_consents_in_settings,
    a_new_email_waits_for_its_confirmation_link,
    a_password_change_needs_the_current_one_and_ends_other_sessions,
    web_and_api_sessions_are_listed_together_and_ended_from_settings,
    a_provider_saves_a_quick_note_and_exports_the_thread,
    staff_delete_their_own_message_and_thread_after_confirming,
    a_client_gets_no_staff_actions,
);

async fn a_person_changes_name_mobile_and_consents_in_settings(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    let page = client.get(&client.path("settings")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("value=\"Casey Client\""));
    let saved = client
        .post(
            &client.path("settings"),
            &[
                ("form", "profile"),
                ("name", "Casey Q. Client"),
                ("mobile", "+1 555 010 0200"),
            ],
        )
        .await;
    saved.assert_redirect(&client.path("settings?done=profile"));
    let bad = client
        .post(
            &client.path("settings"),
            &[("form", "profile"), ("name", ""), ("mobile", "")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("id=\"name\" name=\"name\" required maxlength=\"200\" autocomplete=\"name\" value=\"Casey Q. Client\" aria-invalid=\"true\""));
    let consents = client
        .post(
            &client.path("settings"),
            &[("form", "consents"), ("consent_sms", "on")],
        )
        .await;
    consents.assert_redirect(&client.path("settings?done=consents"));
    let (_, me) = app.me(&cast.client).await;
    assert_eq!(me["name"], "Casey Q. Client");
    assert_eq!(me["mobile"], "+15550100200");
    assert_eq!(me["consent_email"], false);
    assert_eq!(me["consent_sms"], true);
}

async fn a_new_email_waits_for_its_confirmation_link(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    client.get(&client.path("settings")).await;
    let wrong = client
        .post(
            &client.path("settings"),
            &[
                ("form", "email"),
                ("email", "casey@new.example"),
                ("current_password", "not it at all"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.html);
    assert!(wrong.html.contains("id=\"email_password\" name=\"current_password\" type=\"password\" required autocomplete=\"current-password\" aria-invalid=\"true\""));
    let asked = client
        .post(
            &client.path("settings"),
            &[
                ("form", "email"),
                ("email", "casey@new.example"),
                ("current_password", PASSWORD),
            ],
        )
        .await;
    asked.assert_redirect(&client.path("settings?done=email"));
    let page = client.get(asked.location()).await;
    assert!(page.html.contains(&format!(
        "You sign in with <strong>{}</strong>",
        cast.client.email
    )));
    assert!(page.html.contains("A change to casey@new.example waits"));
}

async fn a_password_change_needs_the_current_one_and_ends_other_sessions(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    client.get(&client.path("settings")).await;
    let new = "cobalt-meadow-lantern-42";
    let differ = client
        .post(
            &client.path("settings"),
            &[
                ("form", "password"),
                ("current_password", PASSWORD),
                ("new_password", new),
                ("new_password_again", "something else entirely"),
            ],
        )
        .await;
    assert_eq!(differ.status, StatusCode::BAD_REQUEST);
    assert!(differ.html.contains("The two new passwords differ."));
    let changed = client
        .post(
            &client.path("settings"),
            &[
                ("form", "password"),
                ("current_password", PASSWORD),
                ("new_password", new),
                ("new_password_again", new),
            ],
        )
        .await;
    changed.assert_redirect(&client.path("settings?done=password"));
    assert_eq!(
        client.get(&client.path("mail/inbox")).await.status,
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        app.me(&cast.client).await.0,
        StatusCode::UNAUTHORIZED,
        "the API token ended"
    );
    assert_eq!(
        app.sign_in(&cast.practice, &cast.client.email, new)
            .await
            .status(),
        StatusCode::CREATED
    );
}

async fn web_and_api_sessions_are_listed_together_and_ended_from_settings(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    let page = client.get(&client.path("settings")).await;
    let ends = page.ids_after(&client.path("settings/sessions/"));
    assert_eq!(ends.len(), 2, "the API token and this browser");
    assert!(page.html.contains("This browser"));
    let other = page
        .html
        .split("<li>")
        .find(|li| li.contains("End this session"))
        .expect("the other session has an end button");
    let api_session = ends
        .iter()
        .find(|id| other.contains(id.as_str()))
        .unwrap()
        .clone();
    let ended = client
        .post(
            &client.path(&format!("settings/sessions/{api_session}/end")),
            &[],
        )
        .await;
    ended.assert_redirect(&client.path("settings?done=session"));
    assert_eq!(app.me(&cast.client).await.0, StatusCode::UNAUTHORIZED);
    // Someone else's session id is not found.
    let provider = WebUser::sign_in(&app, &cast.practice, &cast.provider.email).await;
    provider.get(&provider.path("settings")).await;
    let mine = client
        .get(&client.path("settings"))
        .await
        .ids_after(&client.path("settings/sessions/"));
    let refused = provider
        .post(
            &provider.path(&format!("settings/sessions/{}/end", mine[0])),
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(
        client.get(&client.path("mail/inbox")).await.status,
        StatusCode::OK
    );
}

async fn a_provider_saves_a_quick_note_and_exports_the_thread(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.client, &[&user(&cast.provider)], "Sleep")
        .await;
    let provider = WebUser::sign_in(&app, &cast.practice, &cast.provider.email).await;
    let page = provider
        .get(&provider.path(&format!("threads/{thread}")))
        .await;
    assert!(page.html.contains("/quick-note\""));
    assert!(page.html.contains("Export CSV"));
    let noted = provider
        .post(
            &provider.path(&format!("threads/{thread}/quick-note")),
            &[("content", "Sleeps badly; follow up.")],
        )
        .await;
    noted.assert_redirect(&provider.path(&format!("threads/{thread}?done=noted")));
    let (status, notes) = app
        .get(
            &format!("/api/v1/people/{}/chart-notes", cast.client.id),
            &cast.provider,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{notes}");
    assert!(notes.to_string().contains("Sleeps badly; follow up."));
    let csv = provider
        .client
        .get(app.url(&provider.path(&format!("threads/{thread}/export"))))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(csv
        .text()
        .await
        .unwrap()
        .contains("A message body that is long enough."));
    // A front office person takes part but keeps no chart notes: no quick-note form.
    let front_thread = app
        .send(&cast.client, &[&user(&cast.front)], "Parking")
        .await;
    let front = WebUser::sign_in(&app, &cast.practice, &cast.front.email).await;
    let page = front
        .get(&front.path(&format!("threads/{front_thread}")))
        .await;
    assert!(!page.html.contains("/quick-note\""));
}

async fn staff_delete_their_own_message_and_thread_after_confirming(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.provider, &[&user(&cast.client)], "Oops")
        .await;
    let (status, _) = app
        .reply(&cast.client, &thread, json!({"body": "Got it, thanks."}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let provider = WebUser::sign_in(&app, &cast.practice, &cast.provider.email).await;
    let page = provider
        .get(&provider.path(&format!("threads/{thread}")))
        .await;
    // Every message has its reactions form; only one has a delete link.
    let mut deletable = page.ids_after(&provider.path(&format!("threads/{thread}/messages/")));
    deletable.retain(|id| page.html.contains(&format!("/messages/{id}/delete")));
    assert_eq!(deletable.len(), 1, "only the provider's own message");
    let ask = provider
        .get(&provider.path(&format!(
            "threads/{thread}/messages/{}/delete",
            deletable[0]
        )))
        .await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.html.contains("Delete this message?"));
    let (_, view) = app.thread(&cast.client, &thread).await;
    assert_eq!(
        view["messages"].as_array().unwrap().len(),
        2,
        "asking deletes nothing"
    );
    let done = provider
        .post(
            &provider.path(&format!(
                "threads/{thread}/messages/{}/delete",
                deletable[0]
            )),
            &[],
        )
        .await;
    done.assert_redirect(&provider.path(&format!("threads/{thread}?done=deleted")));
    let (_, view) = app.thread(&cast.client, &thread).await;
    assert_eq!(view["messages"].as_array().unwrap().len(), 1);
    let ask = provider
        .get(&provider.path(&format!("threads/{thread}/delete")))
        .await;
    assert!(ask.html.contains("Delete this conversation?"));
    let done = provider
        .post(&provider.path(&format!("threads/{thread}/delete")), &[])
        .await;
    done.assert_redirect(&provider.path("mail/inbox?done=deleted"));
    assert_eq!(
        app.thread(&cast.client, &thread).await.0,
        StatusCode::NOT_FOUND
    );
}

async fn a_client_gets_no_staff_actions(backend: Backend) {
    let (app, cast) = TestApp::with_cast(backend).await;
    let thread = app
        .send(&cast.client, &[&user(&cast.provider)], "Mine")
        .await;
    let client = WebUser::sign_in(&app, &cast.practice, &cast.client.email).await;
    let page = client.get(&client.path(&format!("threads/{thread}"))).await;
    for staff_only in ["/quick-note\"", "Export CSV", "/delete\"", "admin/people"] {
        assert!(!page.html.contains(staff_only), "{staff_only}");
    }
    let note = client
        .post(
            &client.path(&format!("threads/{thread}/quick-note")),
            &[("content", "x")],
        )
        .await;
    assert_eq!(note.status, StatusCode::NOT_FOUND);
    let delete = client
        .post(&client.path(&format!("threads/{thread}/delete")), &[])
        .await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN);
    assert_eq!(app.thread(&cast.client, &thread).await.0, StatusCode::OK);
    // The confirmation pages ask only about what one may delete, named by its real id:
    // of a thread one sees, the refusal the deletion itself gives; of anything else, 404.
    let ask = client
        .get(&client.path(&format!("threads/{thread}/delete")))
        .await;
    assert_eq!(ask.status, StatusCode::FORBIDDEN);
    assert!(!ask.html.contains("Delete for everyone"));
    for path in [
        "threads/x%2F..%2F..%2Ffolders%2Ff%2Fdelete%3F/delete".to_string(),
        format!("threads/{thread}/messages/nothing/delete"),
    ] {
        let page = client.get(&client.path(&path)).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        client.get(&client.path("admin/people")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        client.get(&client.path("admin/audit")).await.status,
        StatusCode::NOT_FOUND
    );
}
