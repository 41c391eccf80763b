//! `/me`: one's own profile, consents and password.

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use chrono::{DateTime, Utc};

use crate::clock::to_datetime;
use crate::domain::conversations::{Autoresponder, Period};
use crate::domain::values::{EmailAddress, PersonName};
use crate::error::AppResult;
use crate::service::people::{self as people_service, Me, PersonPatch};
use crate::service::AppState;

use super::people::{parse_mobile, RoleName, StatusName};
use super::{caller, BearerAuth, JsonBody, NoContent};

/// The practice one belongs to.
#[derive(Debug, Object)]
pub struct PracticeOut {
    pub slug: String,
    pub name: String,
}

/// One's own profile.
#[derive(Debug, Object)]
pub struct MeOut {
    pub id: String,
    pub role: RoleName,
    pub status: StatusName,
    pub name: String,
    pub email: String,
    /// A new address waiting for confirmation; `email` stays in use until then.
    #[oai(skip_serializing_if_is_none)]
    pub pending_email: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub mobile: Option<String>,
    /// Email notifications of new messages (staff: on by default).
    pub consent_email: bool,
    /// Text-message notifications (needs a mobile number).
    pub consent_sms: bool,
    pub practice: PracticeOut,
    // Staff: the autoresponder, if one is set. (Undocumented here: a documented object
    // field becomes `allOf` in the document; `AutoresponderBody` says what it is.)
    #[oai(skip_serializing_if_is_none)]
    pub autoresponder: Option<AutoresponderBody>,
}

/// A staff member's autoresponder (in `PATCH /me`, `null` switches it off): a text sent,
/// marked automatic, to a client who writes during one of the periods (at most once per
/// client and thread every 30 minutes).
#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct AutoresponderBody {
    /// 10 to 2,000 characters (Markdown).
    pub text: String,
    /// 1 to 20 periods.
    pub periods: Vec<PeriodBody>,
}

/// From `from` until `until`; without `until`, until the autoresponder is switched off.
#[derive(Debug, Clone, Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct PeriodBody {
    pub from: DateTime<Utc>,
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

impl From<Autoresponder> for AutoresponderBody {
    fn from(a: Autoresponder) -> Self {
        Self {
            text: a.text,
            periods: a
                .periods
                .into_iter()
                .map(|p| PeriodBody {
                    from: to_datetime(p.from),
                    until: p.until.map(to_datetime),
                })
                .collect(),
        }
    }
}

impl AutoresponderBody {
    fn parse(self) -> AppResult<Autoresponder> {
        let periods = self
            .periods
            .into_iter()
            .map(|p| Period {
                from: p.from.timestamp_millis(),
                until: p.until.map(|u| u.timestamp_millis()),
            })
            .collect();
        Ok(Autoresponder::parse(&self.text, periods)?)
    }
}

impl From<Me> for MeOut {
    fn from(me: Me) -> Self {
        let p = me.person;
        Self {
            id: p.id.to_string(),
            role: p.role.into(),
            status: p.status.into(),
            name: p.name,
            email: p.email,
            pending_email: p.pending_email,
            mobile: p.mobile,
            consent_email: p.consent_email,
            consent_sms: p.consent_sms,
            practice: PracticeOut {
                slug: me.practice_slug,
                name: me.practice_name,
            },
            autoresponder: me.autoresponder.map(Into::into),
        }
    }
}

/// Changes to one's own profile; absent fields stay, `mobile: null` clears the number. A new
/// `email` needs `current_password` and counts once confirmed through the link sent to it.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    pub name: Option<String>,
    pub email: Option<String>,
    /// Required with `email`.
    #[oai(write_only)]
    pub current_password: Option<String>,
    #[serde(default)]
    pub mobile: MaybeUndefined<String>,
    pub consent_email: Option<bool>,
    pub consent_sms: Option<bool>,
    // Staff: your autoresponder; `null` switches it off (see `AutoresponderBody`).
    #[serde(default)]
    pub autoresponder: MaybeUndefined<AutoresponderBody>,
}

/// A password change. The new password needs at least 12 characters and must be hard to guess.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

pub struct MeApi(pub AppState);

#[OpenApi(tag = "super::Tag::Me")]
impl MeApi {
    /// One's own profile and practice.
    #[oai(path = "/me", method = "get", operation_id = "get_me")]
    async fn get(&self, auth: BearerAuth, req: &Request) -> AppResult<Json<MeOut>> {
        let caller = caller(&self.0, &auth, req).await?;
        Ok(Json(people_service::me(&self.0, &caller).await?.into()))
    }

    /// Changes one's own name, mobile number, notification consents and (with
    /// `current_password`, once confirmed through the link sent to it) email address.
    #[oai(path = "/me", method = "patch", operation_id = "update_me")]
    async fn update(
        &self,
        auth: BearerAuth,
        req: &Request,
        body: JsonBody<UpdateMeRequest>,
    ) -> AppResult<Json<MeOut>> {
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
            consent_email: body.consent_email,
            consent_sms: body.consent_sms,
            autoresponder: match body.autoresponder {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(a) => Some(Some(a.parse()?)),
            },
            ..Default::default()
        };
        Ok(Json(
            people_service::update_me(&self.0, &caller, patch, body.current_password.as_deref())
                .await?
                .into(),
        ))
    }

    /// Changes one's own password; one's other sessions end.
    #[oai(
        path = "/me/password",
        method = "post",
        operation_id = "change_password"
    )]
    async fn change_password(
        &self,
        auth: BearerAuth,
        req: &Request,
        body: JsonBody<ChangePasswordRequest>,
    ) -> AppResult<NoContent> {
        let caller = caller(&self.0, &auth, req).await?;
        people_service::change_password(
            &self.0,
            &caller,
            &body.0.current_password,
            &body.0.new_password,
        )
        .await?;
        Ok(NoContent::Done)
    }
}
