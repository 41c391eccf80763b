//! The authorization matrix: every operation of the OpenAPI document and every web page,
//! run by each of eleven actors against an object made for it, with the status each must
//! get. The tables below are the documentation of who may do what; an operation the
//! document declares, or a page `confide::app` declares, without a row here fails the
//! test, and so does a row for one that is gone.
//!
//! The object of a row is made fresh for every actor (a thread Pat the provider started
//! with Pia the client and a file, a draft of Pat's, a folder of Pat's…), so that what one
//! actor does cannot change what the next one meets.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use confide::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{Backend, Session, TestApp, PASSWORD};
use crate::on_both_backends;
use crate::web::WebUser;

on_both_backends!(
    every_api_operation_answers_each_actor_as_the_table_says,
    every_page_answers_each_actor_as_the_table_says,
);

/// Who acts. The object of each row belongs to Pat (the provider) and, where it is a
/// thread, has Pia (the participant, a client) on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The practice's administrator, on no thread.
    Admin,
    /// Pat, a provider: the author of every object.
    Provider,
    FrontOffice,
    Biller,
    ExternalAgent,
    /// An active client on no thread.
    Client,
    /// A client set inactive, on no thread.
    InactiveClient,
    /// Pia, the client on the object's thread.
    Participant,
    /// Another provider, on no thread.
    NonParticipant,
    /// The administrator of another practice.
    OtherAdmin,
    /// No session at all.
    Nobody,
}

pub const ACTORS: [Actor; 11] = [
    Actor::Admin,
    Actor::Provider,
    Actor::FrontOffice,
    Actor::Biller,
    Actor::ExternalAgent,
    Actor::Client,
    Actor::InactiveClient,
    Actor::Participant,
    Actor::NonParticipant,
    Actor::OtherAdmin,
    Actor::Nobody,
];

/// The column heads of the tables, in the order of [`ACTORS`].
const HEADS: &str = "admin prov front bill agent client inact part nonp other none";

/// What a row acts on, made fresh for each actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Object {
    /// Nothing: `{…}` in the path is not used.
    Nothing,
    /// A thread Pat started with Pia, holding one message with one file.
    Thread,
    /// A conversation Pat hosts with Pia.
    Conversation,
    /// The message of such a thread.
    Message,
    /// The file of such a thread's message.
    Attachment,
    /// A file Pat uploaded and has not sent.
    Upload,
    Draft,
    /// A folder of Pat's.
    Folder,
    /// A message Pat scheduled for tomorrow, to Pia.
    Scheduled,
    /// A legal hold the admin placed on Pia.
    Hold,
    /// A chart note Pat saved from a thread with Pia.
    ChartNote,
    /// Pia herself.
    Person,
    /// A link token nobody was sent.
    Token,
    /// Another session of Pat's (a web page ends it).
    Session,
    /// The `state` of Pat's mailbox (from `GET /threads`): bound to Pat, it tells
    /// nobody else anything (410, as a state too old would).
    State,
}

/// What a row sends.
#[derive(Debug, Clone, Copy)]
enum Body {
    None,
    /// A small text file in a multipart form.
    File,
    Json(fn(&Made, &World, usize) -> Value),
}

/// One operation and what each actor gets from it.
struct Row {
    method: Method,
    path: &'static str,
    object: Object,
    body: Body,
    /// Whether the operation ends sessions, so that each actor does it with one of its own
    /// (its session for the other rows is renewed after).
    own_session: bool,
    /// A query string (`{id}` replaced as in the path).
    query: &'static str,
    expect: [u16; 11],
}

fn row(method: Method, path: &'static str, object: Object, body: Body, expect: [u16; 11]) -> Row {
    Row {
        method,
        path,
        object,
        body,
        own_session: false,
        query: "",
        expect,
    }
}

const GET: Method = Method::GET;
const POST: Method = Method::POST;
const PUT: Method = Method::PUT;
const PATCH: Method = Method::PATCH;
const DELETE: Method = Method::DELETE;

/// The API, operation by operation (paths under `/api/v1`).
#[rustfmt::skip]
fn api_rows() -> Vec<Row> {
    use Body::{File, Json, None};
    use Object::*;
    vec![
        //                                                                               admin prov front bill agent client inact part nonp other none
        row(POST, "/attachments", Nothing, File,                                         [201, 201, 201, 201, 201, 201, 201, 201, 201, 201, 401]),
        row(DELETE, "/attachments/{id}", Upload, None,                                   [404, 204, 404, 404, 404, 404, 404, 404, 404, 404, 401]),
        row(GET, "/attachments/{id}", Attachment, None,                                  [404, 200, 404, 404, 404, 404, 404, 200, 404, 404, 401]),
        row(GET, "/attachments/{id}/info", Attachment, None,                             [404, 200, 404, 404, 404, 404, 404, 200, 404, 404, 401]),
        row(GET, "/audit", Nothing, None,                                                [200, 403, 403, 403, 403, 403, 403, 403, 403, 200, 401]),
        row(GET, "/audit/export", Nothing, None,                                         [200, 403, 403, 403, 403, 403, 403, 403, 403, 200, 401]),
        row(GET, "/audit/verify", Nothing, None,                                         [200, 403, 403, 403, 403, 403, 403, 403, 403, 200, 401]),
        Row { query: "?since={id}", ..row(GET, "/changes", State, None,                                           [410, 200, 410, 410, 410, 410, 410, 410, 410, 410, 401]) },
        row(GET, "/chart-notes/{id}", ChartNote, None,                                   [200, 200, 404, 404, 404, 404, 404, 404, 200, 404, 401]),
        row(PUT, "/chart-notes/{id}", ChartNote, Json(chart_note),                       [200, 200, 404, 404, 404, 404, 404, 404, 200, 404, 401]),
        row(GET, "/drafts", Nothing, None,                                               [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401]),
        row(POST, "/drafts", Nothing, Json(draft),                                       [201, 201, 201, 201, 201, 201, 201, 201, 201, 201, 401]),
        row(DELETE, "/drafts/{id}", Draft, None,                                         [404, 204, 404, 404, 404, 404, 404, 404, 404, 404, 401]),
        row(GET, "/drafts/{id}", Draft, None,                                            [404, 200, 404, 404, 404, 404, 404, 404, 404, 404, 401]),
        row(PUT, "/drafts/{id}", Draft, Json(draft),                                     [404, 200, 404, 404, 404, 404, 404, 404, 404, 404, 401]),
        row(POST, "/drafts/{id}/send", Draft, None,                                      [404, 201, 404, 404, 404, 404, 404, 404, 404, 404, 401]),
        row(POST, "/email-changes/{token}", Token, None,                                 [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),
        row(GET, "/events", Nothing, None,                                               [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401]),
        row(GET, "/folders", Nothing, None,                                              [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401]),
        row(POST, "/folders", Nothing, Json(folder),                                     [201, 201, 201, 201, 201, 201, 201, 201, 201, 201, 401]),
        row(POST, "/folders/trash/empty", Nothing, None,                                 [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401]),
        row(DELETE, "/folders/{id}", Folder, None,                                       [404, 204, 404, 404, 404, 404, 404, 404, 404, 404, 401]),
        row(PATCH, "/folders/{id}", Folder, Json(folder),                                [404, 200, 404, 404, 404, 404, 404, 404, 404, 404, 401]),
        row(GET, "/groups", Nothing, None,                                               [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401]),
        row(POST, "/invitations/{token}/accept", Token, Json(password),                  [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),
        row(GET, "/legal-holds", Nothing, None,                                          [200, 403, 403, 403, 403, 403, 403, 403, 403, 200, 401]),
        row(POST, "/legal-holds", Nothing, Json(hold),                                   [201, 403, 403, 403, 403, 403, 403, 403, 403, 404, 401]),
        row(DELETE, "/legal-holds/{id}", Hold, None,                                     [204, 403, 403, 403, 403, 403, 403, 403, 403, 404, 401]),
        row(GET, "/me", Nothing, None,                                                   [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401]),
        row(PATCH, "/me", Nothing, Json(|_, _, _| json!({})),                            [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401]),
        Row { own_session: true, ..row(POST, "/me/password", Nothing, Json(same_password), [204, 204, 204, 204, 204, 204, 204, 204, 204, 204, 401]) },
        row(DELETE, "/messages/{id}", Message, None,                                     [404, 204, 404, 404, 404, 404, 404, 403, 404, 404, 401]),
        row(DELETE, "/messages/{id}/pin", Message, None,                                 [404, 204, 404, 404, 404, 404, 404, 403, 404, 404, 401]),
        row(PUT, "/messages/{id}/pin", Message, None,                                    [404, 204, 404, 404, 404, 404, 404, 403, 404, 404, 401]),
        row(DELETE, "/messages/{id}/reactions/{emoji}", Message, None,                   [404, 204, 404, 404, 404, 404, 404, 204, 404, 404, 401]),
        row(PUT, "/messages/{id}/reactions/{emoji}", Message, None,                      [404, 204, 404, 404, 404, 404, 404, 204, 404, 404, 401]),
        row(POST, "/password-resets", Nothing, Json(reset),                              [202, 202, 202, 202, 202, 202, 202, 202, 202, 202, 202]),
        row(POST, "/password-resets/{token}", Token, Json(password),                     [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),
        row(GET, "/people", Nothing, None,                                               [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401]),
        row(POST, "/people", Nothing, Json(new_person),                                  [201, 201, 201, 201, 201, 403, 403, 403, 201, 201, 401]),
        row(GET, "/people/{id}", Person, None,                                           [200, 200, 200, 200, 200, 404, 404, 200, 200, 404, 401]),
        row(PATCH, "/people/{id}", Person, Json(|_, _, _| json!({"name": "Pia Participant"})), [200, 200, 200, 200, 200, 404, 404, 403, 200, 404, 401]),
        row(GET, "/people/{id}/chart-notes", Person, None,                               [200, 200, 404, 404, 404, 404, 404, 404, 200, 404, 401]),
        row(POST, "/people/{id}/invitation", Person, None,                               [409, 409, 409, 409, 409, 404, 404, 403, 409, 404, 401]),
        row(GET, "/practice/settings", Nothing, None,                                    [200, 403, 403, 403, 403, 403, 403, 403, 403, 200, 401]),
        row(PATCH, "/practice/settings", Nothing, Json(|_, _, _| json!({})),             [200, 403, 403, 403, 403, 403, 403, 403, 403, 200, 401]),
        row(GET, "/scheduled", Nothing, None,                                            [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401]),
        row(DELETE, "/scheduled/{id}", Scheduled, None,                                  [404, 204, 404, 404, 404, 404, 404, 404, 404, 404, 401]),
        row(PATCH, "/scheduled/{id}", Scheduled, Json(|_, _, _| json!({"subject": "Moved"})), [404, 200, 404, 404, 404, 404, 404, 404, 404, 404, 401]),
        row(POST, "/search", Nothing, Json(|_, _, _| json!({"q": "checkup"})),           [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401]),
        row(POST, "/sessions", Nothing, Json(sign_in),                                   [201, 201, 201, 201, 201, 201, 201, 201, 201, 201, 201]),
        Row { own_session: true, ..row(DELETE, "/sessions/current", Nothing, None,       [204, 204, 204, 204, 204, 204, 204, 204, 204, 204, 401]) },
        row(GET, "/threads", Nothing, None,                                              [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401]),
        row(POST, "/threads", Nothing, Json(to_providers),                                [201, 201, 201, 201, 201, 201, 403, 201, 201, 400, 401]),
        row(POST, "/threads/bulk", Thread, Json(|m, _, _| json!({"action": "archive", "thread_ids": [m.id]})), [404, 200, 404, 404, 404, 404, 404, 200, 404, 404, 401]),
        row(DELETE, "/threads/{id}", Thread, None,                                       [404, 204, 404, 404, 404, 404, 404, 403, 404, 404, 401]),
        row(GET, "/threads/{id}", Thread, None,                                          [404, 200, 404, 404, 404, 404, 404, 200, 404, 404, 401]),
        row(PATCH, "/threads/{id}", Thread, Json(|_, _, _| json!({"read": false})),      [404, 200, 404, 404, 404, 404, 404, 200, 404, 404, 401]),
        row(DELETE, "/threads/{id}/announcement", Conversation, None,                    [404, 204, 404, 404, 404, 404, 404, 403, 404, 404, 401]),
        row(PUT, "/threads/{id}/announcement", Conversation, Json(|_, _, _| json!({"text": "Bring your notes"})), [404, 200, 404, 404, 404, 404, 404, 403, 404, 404, 401]),
        row(POST, "/threads/{id}/complete", Conversation, None,                          [404, 204, 404, 404, 404, 404, 404, 403, 404, 404, 401]),
        row(GET, "/threads/{id}/export", Thread, None,                                   [404, 200, 404, 404, 404, 404, 404, 200, 404, 404, 401]),
        row(POST, "/threads/{id}/messages", Thread, Json(reply),                         [404, 201, 404, 404, 404, 404, 404, 201, 404, 404, 401]),
        row(GET, "/threads/{id}/notes", Thread, None,                                    [404, 200, 404, 404, 404, 404, 404, 404, 404, 404, 401]),
        row(POST, "/threads/{id}/notes", Thread, Json(|_, _, _| json!({"body": "Call back on Monday."})), [404, 201, 404, 404, 404, 404, 404, 404, 404, 404, 401]),
        row(POST, "/threads/{id}/participants", Thread, Json(share),                     [404, 200, 404, 404, 404, 404, 404, 403, 404, 404, 401]),
        row(DELETE, "/threads/{id}/pin", Thread, None,                                   [404, 204, 404, 404, 404, 404, 404, 204, 404, 404, 401]),
        row(PUT, "/threads/{id}/pin", Thread, None,                                      [404, 204, 404, 404, 404, 404, 404, 204, 404, 404, 401]),
        row(POST, "/threads/{id}/quick-note", Thread, Json(|_, _, _| json!({})),         [404, 201, 404, 404, 404, 404, 404, 404, 404, 404, 401]),
        row(POST, "/threads/{id}/reopen", Conversation, None,                            [404, 204, 404, 404, 404, 404, 404, 403, 404, 404, 401]),
    ]
}

fn chart_note(_: &Made, _: &World, _: usize) -> Value {
    json!({"content": "Amended: discussed sleep."})
}

fn draft(_: &Made, world: &World, _: usize) -> Value {
    json!({"to": [format!("user:{}", world.id(Actor::Participant))], "subject": "Draft", "body": "Not yet sent, still thinking."})
}

fn folder(_: &Made, _: &World, n: usize) -> Value {
    json!({"name": format!("Folder {n}")})
}

fn password(_: &Made, _: &World, _: usize) -> Value {
    json!({"password": "a-brand-new-passphrase-42"})
}

fn hold(_: &Made, world: &World, _: usize) -> Value {
    json!({"client_id": world.id(Actor::Participant)})
}

fn same_password(_: &Made, _: &World, _: usize) -> Value {
    json!({"current_password": PASSWORD, "new_password": PASSWORD})
}

/// To an address nobody has (one per actor, so that the per-account limit stays out of
/// the way): the answer is the same as for one that exists.
fn reset(_: &Made, _: &World, n: usize) -> Value {
    json!({"practice": "oak", "email": format!("nobody{n}@oak.example")})
}

fn new_person(_: &Made, _: &World, n: usize) -> Value {
    json!({"name": format!("New Client {n}"), "email": format!("new{n}@oak.example"), "role": "client"})
}

fn sign_in(_: &Made, _: &World, _: usize) -> Value {
    json!({"practice": "oak", "email": "pia.participant@oak.example", "password": PASSWORD})
}

fn to_providers(_: &Made, _: &World, _: usize) -> Value {
    json!({"to": ["group:providers"], "subject": "A question", "body": "May I move my appointment?"})
}

fn reply(_: &Made, _: &World, _: usize) -> Value {
    json!({"body": "Thank you, that helps a lot."})
}

fn share(_: &Made, world: &World, _: usize) -> Value {
    json!({"people": [format!("user:{}", world.id(Actor::FrontOffice))]})
}

/// The people of the practice `oak` (and the administrator of `elm`), signed in.
pub struct World {
    sessions: std::sync::Mutex<Vec<(Actor, Session)>>,
}

impl World {
    pub async fn new(app: &TestApp) -> World {
        let oak = app.create_practice("oak").await;
        let elm = app.create_practice("elm").await;
        let mut sessions = Vec::new();
        for actor in ACTORS {
            let session = match actor {
                Actor::Admin => app.admin(&oak).await,
                Actor::OtherAdmin => app.admin(&elm).await,
                Actor::Nobody => Session {
                    token: String::new(),
                    id: String::new(),
                    email: String::new(),
                },
                _ => {
                    let (role, name) = actor.person();
                    app.person(&oak, role, name).await
                }
            };
            sessions.push((actor, session));
        }
        let world = World {
            sessions: std::sync::Mutex::new(sessions),
        };
        let inactive = world.id(Actor::InactiveClient);
        let (status, body) = app
            .patch(
                &format!("/api/v1/people/{inactive}"),
                &world.session(Actor::Admin),
                json!({"status": "inactive"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        world
    }

    pub fn session(&self, actor: Actor) -> Session {
        let sessions = self.sessions.lock().unwrap();
        sessions
            .iter()
            .find(|(a, _)| *a == actor)
            .unwrap()
            .1
            .clone()
    }

    pub fn id(&self, actor: Actor) -> String {
        self.session(actor).id
    }

    /// Replaces `actor`'s session with a new one (after a row that ended the others).
    async fn renew(&self, app: &TestApp, actor: Actor) {
        let session = self.sign_in_again(app, actor).await;
        let mut sessions = self.sessions.lock().unwrap();
        sessions.iter_mut().find(|(a, _)| *a == actor).unwrap().1 = session;
    }

    /// Signs `actor` in again, as a new session.
    async fn sign_in_again(&self, app: &TestApp, actor: Actor) -> Session {
        let practice = if actor == Actor::OtherAdmin {
            "elm"
        } else {
            "oak"
        };
        app.login_as(practice, &self.session(actor).email).await
    }
}

impl Actor {
    /// The role and name of a person of `oak`.
    fn person(self) -> (Role, &'static str) {
        match self {
            Actor::Provider => (Role::Provider, "Pat Provider"),
            Actor::FrontOffice => (Role::FrontOffice, "Fran Front"),
            Actor::Biller => (Role::Biller, "Bo Biller"),
            Actor::ExternalAgent => (Role::ExternalAgent, "Eve Agent"),
            Actor::Client => (Role::Client, "Casey Client"),
            Actor::InactiveClient => (Role::Client, "Ivy Inactive"),
            Actor::Participant => (Role::Client, "Pia Participant"),
            Actor::NonParticipant => (Role::Provider, "Nico Nonparticipant"),
            Actor::Admin | Actor::OtherAdmin | Actor::Nobody => {
                unreachable!("not made by person()")
            }
        }
    }
}

/// What was made for one cell.
#[derive(Debug, Default)]
pub struct Made {
    /// What `{id}` or `{token}` stands for.
    pub id: String,
    /// The thread made with it, if any.
    pub thread: String,
    /// That thread's first message.
    pub message: String,
}

impl Made {
    fn new(id: impl Into<String>) -> Made {
        Made {
            id: id.into(),
            ..Made::default()
        }
    }
}

/// Makes a row's object, as Pat (or, for a hold, the admin) would.
async fn make(app: &TestApp, world: &World, object: Object, n: usize) -> Made {
    let pat = &world.session(Actor::Provider);
    let pia = format!("user:{}", world.id(Actor::Participant));
    match object {
        Object::Nothing => Made::default(),
        Object::Session => unreachable!("made by the page matrix"),
        Object::Person => Made::new(world.id(Actor::Participant)),
        Object::Token => Made::new("bm9ib2R5LXdhcy1ldmVyLXNlbnQtdGhpcy1saW5rLXRva2Vu"),
        Object::State => {
            let (status, page) = app.get("/api/v1/threads", pat).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            Made::new(page["state"].as_str().unwrap())
        }
        Object::Upload => Made::new(app.upload_text(pat, &format!("upload-{n}.txt")).await),
        Object::Thread | Object::Message | Object::Attachment | Object::ChartNote => {
            let file = app.upload_text(pat, &format!("results-{n}.txt")).await;
            let (status, thread) = app
                .post(
                    "/api/v1/threads",
                    pat,
                    json!({"to": [pia], "subject": "Your checkup", "body": "Here are your results, see the file.",
                           "attachment_ids": [file]}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{thread}");
            let thread_id = thread["id"].as_str().unwrap().to_string();
            let message = thread["messages"][0]["id"].as_str().unwrap().to_string();
            let id = match object {
                Object::Thread => thread_id.clone(),
                Object::Message => message.clone(),
                Object::Attachment => file,
                _ => {
                    let (status, note) = app
                        .post(
                            &format!("/api/v1/threads/{thread_id}/quick-note"),
                            pat,
                            json!({}),
                        )
                        .await;
                    assert_eq!(status, StatusCode::CREATED, "{note}");
                    note["id"].as_str().unwrap().to_string()
                }
            };
            Made {
                id,
                thread: thread_id,
                message,
            }
        }
        Object::Conversation => {
            let (status, thread) = app
                .post(
                    "/api/v1/threads",
                    pat,
                    json!({"kind": "conversation", "to": [pia], "subject": "Group session",
                           "body": "Welcome to the group, everyone."}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{thread}");
            let id = thread["id"].as_str().unwrap();
            Made {
                id: id.to_string(),
                thread: id.to_string(),
                message: thread["messages"][0]["id"].as_str().unwrap().to_string(),
            }
        }
        Object::Draft => {
            let (status, made) = app
                .post("/api/v1/drafts", pat, draft(&Made::default(), world, n))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{made}");
            Made::new(made["id"].as_str().unwrap())
        }
        Object::Folder => {
            let (status, made) = app
                .post(
                    "/api/v1/folders",
                    pat,
                    json!({"name": format!("Pat's folder {n}")}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{made}");
            Made::new(made["id"].as_str().unwrap())
        }
        Object::Scheduled => {
            let tomorrow =
                chrono::DateTime::from_timestamp_millis(app.clock_now() + 86_400_000).unwrap();
            let (status, made) = app
                .post(
                    "/api/v1/threads",
                    pat,
                    json!({"to": [pia], "subject": "Reminder", "body": "Your appointment is tomorrow.",
                           "send_at": tomorrow.to_rfc3339()}),
                )
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{made}");
            Made::new(made["id"].as_str().unwrap())
        }
        Object::Hold => {
            let admin = &world.session(Actor::Admin);
            let (status, made) = app
                .post(
                    "/api/v1/legal-holds",
                    admin,
                    hold(&Made::default(), world, n),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{made}");
            Made::new(made["id"].as_str().unwrap())
        }
    }
}

/// What one actor got: the status, and the problem's `code` when there is one.
struct Outcome {
    status: u16,
    code: String,
}

async fn run_cell(app: &TestApp, world: &World, row: &Row, actor: Actor, n: usize) -> Outcome {
    let made = make(app, world, row.object, n).await;
    let path = format!("/api/v1{}{}", row.path, row.query);
    let path = path
        .replace("{id}", &made.id)
        .replace("{token}", &made.id)
        .replace("{emoji}", "%F0%9F%91%8D");
    let session = match actor {
        Actor::Nobody => None,
        _ if row.own_session => Some(world.sign_in_again(app, actor).await),
        _ => Some(world.session(actor)),
    };
    let mut req = app.client.request(row.method.clone(), app.url(&path));
    if let Some(session) = session {
        req = req.bearer_auth(&session.token);
    }
    req = match row.body {
        Body::None => req,
        Body::File => req.multipart(
            reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(b"a note\n".to_vec())
                    .file_name("note.txt")
                    .mime_str("text/plain")
                    .unwrap(),
            ),
        ),
        Body::Json(body) => req.json(&body(&made, world, n)),
    };
    let resp = req.send().await.expect("request");
    if row.own_session && actor != Actor::Nobody {
        world.renew(app, actor).await;
    }
    let status = resp.status().as_u16();
    let code = if resp
        .headers()
        .get("content-type")
        .is_some_and(|t| t.as_bytes().starts_with(b"application/problem+json"))
    {
        let problem: Value = resp.json().await.unwrap_or_default();
        problem["code"].as_str().unwrap_or("").to_string()
    } else {
        String::new()
    };
    Outcome { status, code }
}

/// The operations the served OpenAPI document declares, as `METHOD /path`.
async fn documented_operations(app: &TestApp) -> BTreeSet<String> {
    let document: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "patch", "delete"].contains(&method.as_str()) {
                operations.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    operations
}

async fn every_api_operation_answers_each_actor_as_the_table_says(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        // Every cell uploads; the hourly cap is not what this test is about.
        c.limits.uploads_per_hour = 100_000;
    })
    .await;
    let world = World::new(&app).await;
    let rows = api_rows();

    let documented = documented_operations(&app).await;
    let tabled = rows
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_every_route_has_a_row(&documented, &tabled, "operation");

    let mut n = 0;
    let mut findings = Findings::default();
    for row in &rows {
        let what = format!("{} {}", row.method, row.path);
        let mut got = Vec::new();
        for (column, actor) in ACTORS.into_iter().enumerate() {
            n += 1;
            let outcome = run_cell(&app, &world, row, actor, n).await;
            if row.path.starts_with("/legal-holds") {
                release_holds(&app, &world).await;
            }
            findings.cell(&what, actor, row.expect[column], &outcome);
            got.push(outcome.status);
        }
        findings.row(&what, &row.expect, &got);
    }
    findings.assert_none();
}

/// Fails unless the routes declared and the rows of the table name the same ones.
fn assert_every_route_has_a_row(
    declared: &BTreeSet<String>,
    tabled: &BTreeSet<String>,
    what: &str,
) {
    let missing: Vec<_> = declared.difference(tabled).collect();
    let stale: Vec<_> = tabled.difference(declared).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "{what}s without a row: {missing:?}; rows for no {what}: {stale:?}"
    );
}

/// What the cells of a table met that it does not say.
#[derive(Default)]
struct Findings {
    wrong: String,
}

impl Findings {
    /// One actor's outcome: a server error fails at once; another status than the table's
    /// is noted.
    fn cell(&mut self, what: &str, actor: Actor, expected: u16, got: &Outcome) {
        assert_ne!(got.status / 100, 5, "{what} as {actor:?}");
        if got.status != expected {
            writeln!(
                self.wrong,
                "  {what} as {actor:?}: expected {expected}, got {} {}",
                got.status, got.code
            )
            .unwrap();
        }
    }

    /// A whole row, as the table would hold it, when it differs.
    fn row(&mut self, what: &str, expected: &[u16; 11], got: &[u16]) {
        if got != expected {
            writeln!(self.wrong, "  row as observed: {what} {got:?}").unwrap();
        }
    }

    fn assert_none(self) {
        assert!(
            self.wrong.is_empty(),
            "unexpected outcomes ({HEADS}):\n{}",
            self.wrong
        );
    }
}

/// Releases every legal hold (so that the next cell can delete what it made).
async fn release_holds(app: &TestApp, world: &World) {
    let admin = &world.session(Actor::Admin);
    let (status, holds) = app.get("/api/v1/legal-holds", admin).await;
    assert_eq!(status, StatusCode::OK, "{holds}");
    for hold in holds["holds"].as_array().expect("a list of holds") {
        let id = hold["id"].as_str().unwrap();
        let (status, body) = app
            .delete(&format!("/api/v1/legal-holds/{id}"), admin)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
}

/// What a page row sends.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// Nothing (a GET, or a POST of the CSRF token alone).
    Empty,
    /// These fields, urlencoded with the CSRF token; `{thread}`, `{front}`, `{n}` are
    /// replaced.
    Fields(&'static [(&'static str, &'static str)]),
    /// These fields in a multipart form, as the compose page sends them.
    Multipart(&'static [(&'static str, &'static str)]),
}

/// One page (method and route) and what each actor gets from it. A 303 to the portal's
/// sign-in form counts as 401 here; any other 303 as 303.
struct Page {
    method: &'static str,
    route: &'static str,
    object: Object,
    form: Form,
    /// Whether the page ends or replaces the web session, so that each actor does it in
    /// a browser of its own.
    own_session: bool,
    expect: [u16; 11],
}

fn page(
    method: &'static str,
    route: &'static str,
    object: Object,
    form: Form,
    expect: [u16; 11],
) -> Page {
    Page {
        method,
        route,
        object,
        form,
        own_session: false,
        expect,
    }
}

const NEW_PASSWORD: &[(&str, &str)] = &[
    ("password", "a-brand-new-passphrase-42"),
    ("password_again", "a-brand-new-passphrase-42"),
];

const SETUP: &[(&str, &str)] = &[
    ("name", "Pine Practice"),
    ("slug", "pine{n}"),
    ("admin_name", "Perry Admin"),
    ("admin_email", "perry{n}@pine.example"),
    ("password", "a-brand-new-passphrase-42"),
    ("password_again", "a-brand-new-passphrase-42"),
];

const COMPOSE: &[(&str, &str)] = &[
    ("to", "group:providers"),
    ("subject", "A question"),
    ("body", "May I move my appointment?"),
];

/// The web pages, route by route (as `confide::app` declares them; `:slug` is `oak`).
/// A page that refuses gives 404 for what the actor may not know exists and 403 for
/// what they see but may not do.
#[rustfmt::skip]
fn page_rows() -> Vec<Page> {
    use Form::{Empty, Fields, Multipart};
    use Object::*;
    vec![
        //                                                                                      admin prov front bill agent client inact part nonp other none
        page("get", "/setup/:token", Token, Empty,                                              [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),
        page("post", "/setup/:token", Token, Fields(SETUP), [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),
        page("get", "/invitations/:token", Token, Empty,                                        [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),
        page("post", "/invitations/:token", Token, Fields(NEW_PASSWORD), [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),
        page("get", "/password-resets/:token", Token, Empty,                                    [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        page("post", "/password-resets/:token", Token, Fields(NEW_PASSWORD), [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),
        page("get", "/email-changes/:token", Token, Empty,                                      [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),
        page("post", "/email-changes/:token", Token, Empty,                                     [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404]),
        page("get", "/p/:slug/", Nothing, Empty,                                                [303, 303, 303, 303, 303, 303, 303, 303, 303, 200, 200]),
        Page { own_session: true, ..page("post", "/p/:slug/sign-in", Nothing, Fields(&[("email", "pia.participant@oak.example"), ("password", PASSWORD)]), [303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]) },
        Page { own_session: true, ..page("post", "/p/:slug/sign-out", Nothing, Empty,          [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401]) },
        page("get", "/p/:slug/forgot-password", Nothing, Empty,                                 [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        page("post", "/p/:slug/forgot-password", Nothing, Fields(&[("email", "nobody{n}@oak.example")]), [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
        page("post", "/p/:slug/mail/bulk", Thread, Fields(&[("action", "archive"), ("thread_id", "{thread}")]), [404, 303, 404, 404, 404, 404, 404, 303, 404, 401, 401]),
        page("get", "/p/:slug/mail/:folder", Nothing, Empty,                                    [200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401]),
        page("get", "/p/:slug/threads/:id", Thread, Empty,                                      [404, 200, 404, 404, 404, 404, 404, 200, 404, 401, 401]),
        page("post", "/p/:slug/threads/:id/reply", Thread, Fields(&[("body", "Thank you, that helps a lot.")]), [404, 303, 404, 404, 404, 404, 404, 303, 404, 401, 401]),
        page("post", "/p/:slug/threads/:id/quick-note", Thread, Fields(&[("content", "Sleeps badly.")]), [404, 303, 404, 404, 404, 404, 404, 404, 404, 401, 401]),
        page("post", "/p/:slug/threads/:id/announcement", Conversation, Fields(&[("text", "Bring your notes"), ("action", "set")]), [404, 303, 404, 404, 404, 404, 404, 403, 404, 401, 401]),
        page("post", "/p/:slug/threads/:id/completion", Conversation, Fields(&[("action", "complete")]), [404, 303, 404, 404, 404, 404, 404, 403, 404, 401, 401]),
        page("post", "/p/:slug/threads/:id/notes", Thread, Fields(&[("body", "Call back on Monday.")]), [404, 303, 404, 404, 404, 404, 404, 404, 404, 401, 401]),
        page("post", "/p/:slug/threads/:id/pin", Thread, Fields(&[("action", "pin")]),          [404, 303, 404, 404, 404, 404, 404, 303, 404, 401, 401]),
        page("post", "/p/:slug/threads/:id/team", Thread, Fields(&[("action", "done")]),        [404, 400, 404, 404, 404, 404, 404, 403, 404, 401, 401]),
        page("post", "/p/:slug/threads/:id/messages/:message/pin", Thread, Fields(&[("action", "pin")]), [404, 303, 404, 404, 404, 404, 404, 403, 404, 401, 401]),
        page("get", "/p/:slug/threads/:id/share", Thread, Empty,                                [404, 200, 404, 404, 404, 404, 404, 404, 404, 401, 401]),
        page("post", "/p/:slug/threads/:id/share", Thread, Fields(&[("person", "{front}")]),    [404, 303, 404, 404, 404, 404, 404, 403, 404, 401, 401]),
        page("post", "/p/:slug/threads/:id/messages/:message/reactions", Thread, Fields(&[("reaction", "add 👍")]), [404, 303, 404, 404, 404, 404, 404, 303, 404, 401, 401]),
        page("get", "/p/:slug/threads/:id/export", Thread, Empty,                               [404, 200, 404, 404, 404, 404, 404, 200, 404, 401, 401]),
        page("get", "/p/:slug/threads/:id/delete", Thread, Empty,                               [404, 200, 404, 404, 404, 404, 404, 403, 404, 401, 401]),
        page("post", "/p/:slug/threads/:id/delete", Thread, Empty,                              [404, 303, 404, 404, 404, 404, 404, 403, 404, 401, 401]),
        page("get", "/p/:slug/threads/:thread/messages/:id/delete", Message, Empty,             [404, 200, 404, 404, 404, 404, 404, 403, 404, 401, 401]),
        page("post", "/p/:slug/threads/:thread/messages/:id/delete", Message, Empty,            [404, 303, 404, 404, 404, 404, 404, 403, 404, 401, 401]),
        page("get", "/p/:slug/compose", Nothing, Empty,                                         [200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401]),
        page("post", "/p/:slug/compose", Nothing, Multipart(COMPOSE),                           [303, 303, 303, 303, 303, 303, 403, 303, 303, 401, 401]),
        page("get", "/p/:slug/drafts/:id", Draft, Empty,                                        [404, 200, 404, 404, 404, 404, 404, 404, 404, 401, 401]),
        page("post", "/p/:slug/scheduled/:id/cancel", Scheduled, Empty,                         [404, 303, 404, 404, 404, 404, 404, 404, 404, 401, 401]),
        page("post", "/p/:slug/search", Nothing, Fields(&[("q", "checkup")]),                  [200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401]),
        page("get", "/p/:slug/settings", Nothing, Empty,                                        [200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401]),
        page("post", "/p/:slug/settings", Nothing, Fields(&[("form", "autoresponder"), ("action", "off")]), [303, 303, 303, 303, 303, 403, 403, 403, 303, 401, 401]),
        page("post", "/p/:slug/settings/sessions/:id/end", Session, Empty,                      [404, 303, 404, 404, 404, 404, 404, 404, 404, 401, 401]),
        page("get", "/p/:slug/admin/people", Nothing, Empty,                                    [200, 200, 200, 200, 200, 404, 404, 404, 200, 401, 401]),
        page("post", "/p/:slug/admin/people", Nothing, Fields(&[("role", "client"), ("name", "New Client {n}"), ("email", "new{n}@oak.example")]), [303, 303, 303, 303, 303, 404, 404, 404, 303, 401, 401]),
        page("post", "/p/:slug/admin/people/:id/invitation", Person, Empty,                    [409, 409, 409, 409, 409, 404, 404, 404, 409, 401, 401]),
        page("post", "/p/:slug/admin/people/:id/status", Person, Fields(&[("status", "active")]), [303, 303, 303, 303, 303, 404, 404, 404, 303, 401, 401]),
        page("get", "/p/:slug/admin/audit", Nothing, Empty,                                     [200, 404, 404, 404, 404, 404, 404, 404, 404, 401, 401]),
        page("get", "/p/:slug/admin/settings", Nothing, Empty,                                  [200, 404, 404, 404, 404, 404, 404, 404, 404, 401, 401]),
        page("post", "/p/:slug/admin/settings", Nothing, Fields(&[("conversation_max_participants", "25"), ("new_clients_can_start_threads", "on")]), [303, 404, 404, 404, 404, 404, 404, 404, 404, 401, 401]),
        page("get", "/p/:slug/updates", Nothing, Empty,                                         [200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401]),
        page("get", "/p/:slug/events", Nothing, Empty,                                          [200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401]),
        page("get", "/p/:slug/attachments/:id", Attachment, Empty,                              [404, 200, 404, 404, 404, 404, 404, 200, 404, 401, 401]),
        page("post", "/p/:slug/folders", Nothing, Fields(&[("name", "Folder {n}")]),            [303, 303, 303, 303, 303, 303, 303, 303, 303, 401, 401]),
        page("post", "/p/:slug/folders/:id/rename", Folder, Fields(&[("name", "Renamed {n}")]), [404, 303, 404, 404, 404, 404, 404, 404, 404, 401, 401]),
        page("post", "/p/:slug/folders/:id/delete", Folder, Empty,                              [404, 303, 404, 404, 404, 404, 404, 404, 404, 401, 401]),
    ]
}

/// Each actor in a browser of its own (a cookie jar), signed in at its practice's portal.
struct Browsers {
    users: std::sync::Mutex<Vec<(Actor, std::sync::Arc<WebUser>)>>,
}

impl Browsers {
    async fn new(app: &TestApp, world: &World) -> Browsers {
        let mut users = Vec::new();
        for actor in ACTORS {
            users.push((actor, std::sync::Arc::new(browser(app, world, actor).await)));
        }
        Browsers {
            users: std::sync::Mutex::new(users),
        }
    }

    fn of(&self, actor: Actor) -> std::sync::Arc<WebUser> {
        let users = self.users.lock().unwrap();
        users.iter().find(|(a, _)| *a == actor).unwrap().1.clone()
    }

    async fn renew(&self, app: &TestApp, world: &World, actor: Actor) {
        let user = std::sync::Arc::new(browser(app, world, actor).await);
        let mut users = self.users.lock().unwrap();
        users.iter_mut().find(|(a, _)| *a == actor).unwrap().1 = user;
    }
}

/// A browser for `actor`: signed in, or (nobody) holding the portal's CSRF cookie.
async fn browser(app: &TestApp, world: &World, actor: Actor) -> WebUser {
    match actor {
        Actor::Nobody => {
            let user = WebUser::new(app, "oak");
            assert_eq!(user.get(&user.path("")).await.status, StatusCode::OK);
            user
        }
        Actor::OtherAdmin => WebUser::sign_in(app, "elm", &world.session(actor).email).await,
        _ => WebUser::sign_in(app, "oak", &world.session(actor).email).await,
    }
}

/// The ids of Pat's sessions that Pat's settings page offers to end.
async fn endable_sessions(browsers: &Browsers) -> Vec<String> {
    let pat = browsers.of(Actor::Provider);
    let settings = pat.get(&pat.path("settings")).await;
    assert_eq!(settings.status, StatusCode::OK);
    settings.ids_after("/p/oak/settings/sessions/")
}

async fn run_page_cell(
    app: &TestApp,
    world: &World,
    browsers: &Browsers,
    row: &Page,
    actor: Actor,
    n: usize,
) -> u16 {
    let made = match row.object {
        Object::Session => {
            let before = endable_sessions(browsers).await;
            world.sign_in_again(app, Actor::Provider).await;
            let after = endable_sessions(browsers).await;
            let new: Vec<_> = after
                .into_iter()
                .filter(|id| !before.contains(id))
                .collect();
            assert_eq!(new.len(), 1, "one new session of Pat's");
            Made::new(new[0].clone())
        }
        object => make(app, world, object, n).await,
    };
    let fill = |text: &str| {
        text.replace(":slug", "oak")
            .replace(":folder", "inbox")
            .replace(":token", &made.id)
            .replace(":thread", &made.thread)
            .replace(":message", &made.message)
            .replace(":id", &made.id)
            .replace("{thread}", &made.thread)
            .replace("{front}", &world.id(Actor::FrontOffice))
            .replace("{n}", &n.to_string())
    };
    let user = if row.own_session {
        std::sync::Arc::new(browser(app, world, actor).await)
    } else {
        browsers.of(actor)
    };
    let url = format!("{}{}", user.base, fill(row.route));
    let request = match (row.method, row.form) {
        ("get", _) => user.client.get(url),
        (_, Form::Empty) => user.client.post(url).form(&[("csrf_token", user.csrf())]),
        (_, Form::Fields(fields)) => {
            let mut all = vec![("csrf_token".to_string(), user.csrf())];
            all.extend(fields.iter().map(|(k, v)| (k.to_string(), fill(v))));
            user.client.post(url).form(&all)
        }
        (_, Form::Multipart(fields)) => {
            let mut form = reqwest::multipart::Form::new().text("csrf_token", user.csrf());
            for (k, v) in fields {
                form = form.text(k.to_string(), fill(v));
            }
            user.client.post(url).multipart(form)
        }
    };
    // Only the head: an event stream's body never ends.
    let resp = request.send().await.expect("request");
    let status = resp.status();
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or("")
        .to_string();
    drop(resp);
    if row.own_session && actor != Actor::Nobody {
        browsers.renew(app, world, actor).await;
    }
    if row.object == Object::Session {
        // Pat's session for making objects may have been the one ended.
        world.renew(app, Actor::Provider).await;
    }
    let to_sign_in = location == "/p/oak/" || location.starts_with("/p/oak/?");
    if status == StatusCode::SEE_OTHER && to_sign_in {
        401
    } else {
        status.as_u16()
    }
}

async fn every_page_answers_each_actor_as_the_table_says(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.limits.uploads_per_hour = 100_000;
    })
    .await;
    let world = World::new(&app).await;
    let browsers = Browsers::new(&app, &world).await;
    let rows = page_rows();

    let declared: BTreeSet<String> = confide::app::LINK_PAGES
        .iter()
        .map(|(m, p)| format!("{m} {p}"))
        .chain(
            confide::app::INBOX_PAGES
                .iter()
                .map(|(m, p)| format!("{m} /p{p}")),
        )
        .collect();
    let tabled = rows
        .iter()
        .map(|r| format!("{} {}", r.method, r.route))
        .collect();
    assert_every_route_has_a_row(&declared, &tabled, "page");

    let mut n = 0;
    let mut findings = Findings::default();
    for row in &rows {
        let what = format!("{} {}", row.method, row.route);
        let mut got = Vec::new();
        for (column, actor) in ACTORS.into_iter().enumerate() {
            n += 1;
            let status = run_page_cell(&app, &world, &browsers, row, actor, n).await;
            let outcome = Outcome {
                status,
                code: String::new(),
            };
            findings.cell(&what, actor, row.expect[column], &outcome);
            got.push(status);
        }
        findings.row(&what, &row.expect, &got);
    }
    findings.assert_none();
}
