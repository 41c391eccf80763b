//! Administration: the people of the practice (staff create clients and set them active or
//! inactive; admins also create staff and disable accounts), and the audit log (admins).

use askama::Template;
use poem::http::StatusCode;
use poem::web::{CsrfToken, CsrfVerifier, Data, Path, Query};
use poem::{handler, Body, Request, Response};
use serde::Deserialize;

use crate::domain::ids::PersonId;
use crate::domain::people::{may_change_person, may_create_person, PersonChange};
use crate::domain::values::{EmailAddress, MobileNumber, PersonName};
use crate::domain::{Role, Status};
use crate::error::{AppError, AppResult};
use crate::service::audit::{self as audit_service, AuditFilter};
use crate::service::people::{self, ListQuery, NewPerson, PersonPatch, PersonView};
use crate::service::AppState;

use super::super::form::Fields;
use super::{
    checked_form, long_time, not_found, page_error, render, role_name, see_other, visit, Chrome,
    Visit,
};

const PAGE_SIZE: i64 = 50;

/// A person as a row of the directory, with the status changes the viewer may make.
pub struct PersonLine {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    pub status: &'static str,
    pub email: String,
    pub invited: bool,
    pub moves: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "web/inbox/people.html")]
struct PeoplePage {
    chrome: Chrome,
    people: Vec<PersonLine>,
    roles: Vec<(&'static str, &'static str)>,
    creatable: Vec<(&'static str, &'static str)>,
    role: String,
    status: String,
    next: Option<String>,
    notice: Option<&'static str>,
    error: Option<String>,
    error_field: String,
    /// What the create form held, when it has to be shown again.
    new_name: String,
    new_email: String,
    new_role: String,
}

impl PeoplePage {
    fn statuses(&self) -> [(&'static str, &'static str); 4] {
        [
            ("invited", "Invited"),
            ("active", "Active"),
            ("inactive", "Inactive"),
            ("disabled", "Disabled"),
        ]
    }
}

#[derive(Deserialize, Default)]
pub struct PeopleQuery {
    role: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
}

fn status_label(status: Status) -> &'static str {
    match status {
        Status::Invited => "Invited",
        Status::Active => "Active",
        Status::Inactive => "Inactive",
        Status::Disabled => "Disabled",
    }
}

/// The status changes `actor` may make to `p`, as (status, button label).
fn moves(actor: Role, me: &str, p: &PersonView) -> Vec<(&'static str, &'static str)> {
    let Some(from) = p.status else {
        return Vec::new();
    };
    let candidates = [
        (Status::Active, "active", "Set active"),
        (Status::Inactive, "inactive", "Set inactive"),
        (Status::Disabled, "disabled", "Disable"),
    ];
    candidates
        .into_iter()
        .filter(|(to, _, _)| *to != from && from != Status::Invited)
        .filter(|(to, _, _)| {
            let change = PersonChange {
                status: Some(*to),
                ..PersonChange::default()
            };
            may_change_person(actor, p.id == me, p.role, from, change).is_ok()
        })
        .map(|(_, value, label)| (value, label))
        .collect()
}

/// Staff may open the directory; clients are told it does not exist.
async fn staff_visit(state: &AppState, req: &Request, slug: &str) -> Result<Visit, Response> {
    let visit = visit(state, req, slug).await?;
    if visit.caller.role().is_staff() {
        Ok(visit)
    } else {
        Err(not_found())
    }
}

async fn people_view(
    state: &AppState,
    visit: &Visit,
    csrf: &CsrfToken,
    query: &PeopleQuery,
) -> Result<PeoplePage, Response> {
    let chrome = visit.chrome(state, csrf, "admin/people").await?;
    let caller = &visit.caller;
    let role = query.role.as_deref().and_then(|r| r.parse::<Role>().ok());
    let status = query
        .status
        .as_deref()
        .and_then(|s| s.parse::<Status>().ok());
    let list = ListQuery {
        role,
        status,
        cursor: query.cursor.clone(),
        limit: PAGE_SIZE,
    };
    let (found, next) = people::list(state, caller, list)
        .await
        .map_err(page_error)?;
    let me = caller.person.id.as_str();
    let people = found
        .iter()
        .map(|p| PersonLine {
            id: p.id.clone(),
            name: p.name.clone(),
            role: role_name(p.role),
            status: p.status.map(status_label).unwrap_or(""),
            email: p.email.clone().unwrap_or_default(),
            invited: p.status == Some(Status::Invited),
            moves: moves(caller.role(), me, p),
        })
        .collect();
    let roles = Role::ALL.map(|r| (r.as_str(), role_name(r))).to_vec();
    let creatable = Role::ALL
        .into_iter()
        .filter(|r| may_create_person(caller.role(), *r).is_ok())
        .map(|r| (r.as_str(), role_name(r)))
        .collect();
    Ok(PeoplePage {
        chrome,
        people,
        roles,
        creatable,
        role: role.map(|r| r.as_str().to_string()).unwrap_or_default(),
        status: status.map(|s| s.as_str().to_string()).unwrap_or_default(),
        next,
        notice: None,
        error: None,
        error_field: String::new(),
        new_name: String::new(),
        new_email: String::new(),
        new_role: "client".into(),
    })
}

#[handler]
pub async fn people_page(
    req: &Request,
    Path(slug): Path<String>,
    Query(query): Query<PeopleQuery>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    let visit = or_page!(staff_visit(&state, req, &slug).await);
    let mut page = or_page!(people_view(&state, &visit, csrf, &query).await);
    page.notice = match query.done.as_deref() {
        Some("created") => Some("Added. An invitation to choose a password is on its way."),
        Some("invited") => Some("The invitation was sent again."),
        Some("status") => Some("The status is changed."),
        _ => None,
    };
    render(StatusCode::OK, &page)
}

async fn staff_post(
    state: &AppState,
    req: &Request,
    slug: &str,
    verifier: &CsrfVerifier,
    body: Body,
) -> Result<(Visit, Fields), Response> {
    let visit = staff_visit(state, req, slug).await?;
    Ok((visit, checked_form(verifier, body).await?))
}

fn new_person(form: &Fields) -> AppResult<NewPerson> {
    let role = form
        .get("role")
        .parse::<Role>()
        .map_err(|_| AppError::invalid("role", "Choose a role."))?;
    let mobile = match form.get("mobile").trim() {
        "" => None,
        raw => Some(MobileNumber::parse("mobile", raw)?),
    };
    Ok(NewPerson {
        role,
        name: PersonName::parse("name", form.get("name"))?,
        email: EmailAddress::parse("email", form.get("email"))?,
        mobile,
    })
}

/// Adds a person as invited; the invitation goes out by email.
#[handler]
pub async fn create_person(
    req: &Request,
    Path(slug): Path<String>,
    csrf: &CsrfToken,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, form) = or_page!(staff_post(&state, req, &slug, verifier, body).await);
    let created = match new_person(&form) {
        Ok(new) => people::create(&state, &visit.caller, new).await,
        Err(e) => Err(e),
    };
    let error = match created {
        Ok(_) => return see_other(&visit.href("admin/people?done=created")),
        Err(e) if e.status().is_client_error() && e.status() != StatusCode::NOT_FOUND => e,
        Err(e) => return page_error(e),
    };
    let mut page = or_page!(people_view(&state, &visit, csrf, &PeopleQuery::default()).await);
    page.error_field = error.field.clone().unwrap_or_default();
    page.error = Some(error.detail.clone());
    page.new_name = form.get("name").to_string();
    page.new_email = form.get("email").to_string();
    page.new_role = form.get("role").to_string();
    render(error.status(), &page)
}

#[handler]
pub async fn resend_invitation(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, _) = or_page!(staff_post(&state, req, &slug, verifier, body).await);
    let id = PersonId::from_trusted(id);
    visit.then_go(
        people::resend_invitation(&state, &visit.caller, &id).await,
        "admin/people?done=invited",
    )
}

/// Sets a person active, inactive or disabled, under the same rules as the API.
#[handler]
pub async fn set_status(
    req: &Request,
    Path((slug, id)): Path<(String, String)>,
    verifier: &CsrfVerifier,
    state: Data<&AppState>,
    body: Body,
) -> Response {
    let (visit, form) = or_page!(staff_post(&state, req, &slug, verifier, body).await);
    let Ok(status) = form.get("status").parse::<Status>() else {
        return page_error(AppError::invalid("status", "Choose a status."));
    };
    let patch = PersonPatch {
        status: Some(status),
        ..PersonPatch::default()
    };
    let id = PersonId::from_trusted(id);
    visit.then_go(
        people::update(&state, &visit.caller, &id, patch).await,
        "admin/people?done=status",
    )
}

pub struct AuditLine {
    pub time: String,
    pub actor: String,
    pub action: String,
    pub object: String,
    pub outcome: String,
}

#[derive(Template)]
#[template(path = "web/inbox/audit.html")]
struct AuditPage {
    chrome: Chrome,
    lines: Vec<AuditLine>,
    action: String,
    involving: String,
    /// The filters as they go into the next page's address.
    query: String,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    action: Option<String>,
    involving: Option<String>,
    cursor: Option<String>,
}

/// The audit log, newest first, by action and by the person (or object) involved.
#[handler]
pub async fn audit_page(
    req: &Request,
    Path(slug): Path<String>,
    Query(query): Query<AuditQuery>,
    csrf: &CsrfToken,
    state: Data<&AppState>,
) -> Response {
    let visit = or_page!(visit(&state, req, &slug).await);
    if visit.caller.role() != Role::Admin {
        return not_found();
    }
    let chrome = or_page!(visit.chrome(&state, csrf, "admin/audit").await);
    let plain = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let (action, involving) = (plain(&query.action), plain(&query.involving));
    let filter = AuditFilter {
        action: action.as_deref(),
        involving: involving.as_deref(),
    };
    let listed =
        audit_service::list(&state, &visit.caller, filter, query.cursor.as_deref(), 100).await;
    let (rows, next) = or_page!(listed.map_err(page_error));
    let lines = rows
        .into_iter()
        .map(|r| AuditLine {
            time: long_time(r.at).0,
            actor: r.actor_id.unwrap_or_default(),
            action: r.action,
            object: match (r.object_type, r.object_id) {
                (Some(t), Some(id)) => format!("{t} {id}"),
                (Some(t), None) => t,
                _ => String::new(),
            },
            outcome: r.outcome,
        })
        .collect();
    let (action, involving) = (action.unwrap_or_default(), involving.unwrap_or_default());
    let encode = |v: &str| {
        percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let page = AuditPage {
        chrome,
        lines,
        query: format!(
            "action={}&involving={}",
            encode(&action),
            encode(&involving)
        ),
        action,
        involving,
        next,
    };
    render(StatusCode::OK, &page)
}
