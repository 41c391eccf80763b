//! `/people`: the practice directory.

use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use serde::Deserialize;

use crate::domain::ids::PersonId;
use crate::domain::values::{EmailAddress, MobileNumber, PersonName};
use crate::domain::{Role, Status};
use crate::error::AppResult;
use crate::service::people::{
    self as people_service, ListQuery, NewPerson, PersonPatch, PersonView,
};
use crate::service::AppState;

use super::{caller, BearerAuth, JsonBody};

/// A role in the practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Admin,
    Provider,
    FrontOffice,
    Biller,
    ExternalAgent,
    Client,
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Self {
        match r {
            RoleName::Admin => Role::Admin,
            RoleName::Provider => Role::Provider,
            RoleName::FrontOffice => Role::FrontOffice,
            RoleName::Biller => Role::Biller,
            RoleName::ExternalAgent => Role::ExternalAgent,
            RoleName::Client => Role::Client,
        }
    }
}

impl From<Role> for RoleName {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => RoleName::Admin,
            Role::Provider => RoleName::Provider,
            Role::FrontOffice => RoleName::FrontOffice,
            Role::Biller => RoleName::Biller,
            Role::ExternalAgent => RoleName::ExternalAgent,
            Role::Client => RoleName::Client,
        }
    }
}

/// An account status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum StatusName {
    Invited,
    Active,
    Inactive,
    Disabled,
}

impl From<StatusName> for Status {
    fn from(s: StatusName) -> Self {
        match s {
            StatusName::Invited => Status::Invited,
            StatusName::Active => Status::Active,
            StatusName::Inactive => Status::Inactive,
            StatusName::Disabled => Status::Disabled,
        }
    }
}

impl From<Status> for StatusName {
    fn from(s: Status) -> Self {
        match s {
            Status::Invited => StatusName::Invited,
            Status::Active => StatusName::Active,
            Status::Inactive => StatusName::Inactive,
            Status::Disabled => StatusName::Disabled,
        }
    }
}

/// A person as the caller may see them. Clients see only id, name and role of others.
#[derive(Debug, Object)]
pub struct PersonOut {
    pub id: String,
    pub role: RoleName,
    pub name: String,
    #[oai(skip_serializing_if_is_none)]
    pub status: Option<StatusName>,
    #[oai(skip_serializing_if_is_none)]
    pub email: Option<String>,
    /// A new address waiting for the person to confirm it; `email` stays in use until then.
    #[oai(skip_serializing_if_is_none)]
    pub pending_email: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub mobile: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub consent_email: Option<bool>,
    #[oai(skip_serializing_if_is_none)]
    pub consent_sms: Option<bool>,
    /// For staff looking at one client: whether the client may start threads, or only
    /// reply (see the practice setting `new_clients_can_start_threads`).
    #[oai(skip_serializing_if_is_none)]
    pub may_start_threads: Option<bool>,
}

impl From<PersonView> for PersonOut {
    fn from(v: PersonView) -> Self {
        Self {
            id: v.id,
            role: v.role.into(),
            name: v.name,
            status: v.status.map(Into::into),
            email: v.email,
            pending_email: v.pending_email,
            mobile: v.mobile,
            consent_email: v.consent_email,
            consent_sms: v.consent_sms,
            may_start_threads: v.may_start_threads,
        }
    }
}

/// A page of the directory.
#[derive(Debug, Object)]
pub struct PeoplePage {
    pub people: Vec<PersonOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// A new person; they are `invited` until they accept their invitation.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct CreatePersonRequest {
    pub role: RoleName,
    pub name: String,
    pub email: String,
    pub mobile: Option<String>,
}

/// Changes to a person; absent fields stay as they are, `mobile: null` clears the number.
/// Only admins change another person's `email`, and the new address counts once its owner
/// confirms it through the link sent to it. Staff may withdraw consents, never grant them;
/// a `mobile` set by staff withdraws SMS consent.
#[derive(Debug, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct UpdatePersonRequest {
    pub name: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    pub mobile: MaybeUndefined<String>,
    pub role: Option<RoleName>,
    pub status: Option<StatusName>,
    pub consent_email: Option<bool>,
    pub consent_sms: Option<bool>,
    /// Staff, for a client: let them start threads (`true`) or only reply (`false`).
    pub may_start_threads: Option<bool>,
}

pub(super) fn parse_mobile(
    mobile: MaybeUndefined<String>,
) -> AppResult<Option<Option<MobileNumber>>> {
    Ok(match mobile {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(raw) if raw.trim().is_empty() => Some(None),
        MaybeUndefined::Value(raw) => Some(Some(MobileNumber::parse("mobile", &raw)?)),
    })
}

#[derive(ApiResponse)]
pub enum Created {
    /// The person was created.
    #[oai(status = 201)]
    Created(Json<PersonOut>),
}

pub struct PeopleApi(pub AppState);

#[OpenApi(tag = "super::Tag::People")]
impl PeopleApi {
    /// The directory: staff see everyone of the practice; clients see the staff they may write to.
    #[oai(path = "/people", method = "get", operation_id = "list_people")]
    async fn list(
        &self,
        auth: BearerAuth,
        req: &Request,
        role: Query<Option<RoleName>>,
        status: Query<Option<StatusName>>,
        cursor: Query<Option<String>>,
        /// Page size, 1–200 (default 50).
        limit: Query<Option<i64>>,
    ) -> AppResult<Json<PeoplePage>> {
        let caller = caller(&self.0, &auth, req).await?;
        let (people, next_cursor) = people_service::list(
            &self.0,
            &caller,
            ListQuery {
                role: role.0.map(Into::into),
                status: status.0.map(Into::into),
                cursor: cursor.0,
                limit: limit.0.unwrap_or(50),
            },
        )
        .await?;
        Ok(Json(PeoplePage {
            people: people.into_iter().map(Into::into).collect(),
            next_cursor,
        }))
    }

    /// Creates a person: administrators create anyone, other staff create clients.
    #[oai(path = "/people", method = "post", operation_id = "create_person")]
    async fn create(
        &self,
        auth: BearerAuth,
        req: &Request,
        body: JsonBody<CreatePersonRequest>,
    ) -> AppResult<Created> {
        let caller = caller(&self.0, &auth, req).await?;
        let body = body.0;
        let new = NewPerson {
            role: body.role.into(),
            name: PersonName::parse("name", &body.name)?,
            email: EmailAddress::parse("email", &body.email)?,
            mobile: body
                .mobile
                .filter(|m| !m.trim().is_empty())
                .map(|m| MobileNumber::parse("mobile", &m))
                .transpose()?,
        };
        let created = people_service::create(&self.0, &caller, new).await?;
        Ok(Created::Created(Json(created.into())))
    }

    /// One person, if the caller may see them.
    #[oai(path = "/people/:id", method = "get", operation_id = "get_person")]
    async fn get(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<Json<PersonOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        Ok(Json(
            people_service::get(&self.0, &caller, &PersonId::from_trusted(id.0))
                .await?
                .into(),
        ))
    }

    /// Sends an invited person a new invitation email; the earlier link stops working.
    #[oai(
        path = "/people/:id/invitation",
        method = "post",
        operation_id = "resend_invitation"
    )]
    async fn resend_invitation(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
    ) -> AppResult<super::password_resets::Accepted> {
        let caller = caller(&self.0, &auth, req).await?;
        people_service::resend_invitation(&self.0, &caller, &PersonId::from_trusted(id.0)).await?;
        Ok(super::password_resets::Accepted::Accepted(Json(
            super::password_resets::Queued {
                detail: "A new invitation is on its way; the earlier link no longer works.".into(),
            },
        )))
    }

    /// Changes a person: profile, role (admins, staff only) or status.
    #[oai(path = "/people/:id", method = "patch", operation_id = "update_person")]
    async fn update(
        &self,
        auth: BearerAuth,
        req: &Request,
        id: Path<String>,
        body: JsonBody<UpdatePersonRequest>,
    ) -> AppResult<Json<PersonOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        let body = body.0;
        let patch = PersonPatch {
            name: body
                .name
                .as_deref()
                .map(|n| PersonName::parse("name", n))
                .transpose()?,
            email: body
                .email
                .as_deref()
                .map(|e| EmailAddress::parse("email", e))
                .transpose()?,
            mobile: parse_mobile(body.mobile)?,
            role: body.role.map(Into::into),
            status: body.status.map(Into::into),
            consent_email: body.consent_email,
            consent_sms: body.consent_sms,
            may_start_threads: body.may_start_threads,
            autoresponder: None,
        };
        Ok(Json(
            people_service::update(&self.0, &caller, &PersonId::from_trusted(id.0), patch)
                .await?
                .into(),
        ))
    }
}
