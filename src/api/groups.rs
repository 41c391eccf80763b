//! `/groups`: the staff groups one may address.

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::error::AppResult;
use crate::service::{people as people_service, AppState};

use super::people::RoleName;
use super::{caller, BearerAuth};

/// A staff group; address it as `to: ["group:providers"]`.
#[derive(Object)]
pub struct GroupOut {
    pub id: String,
    pub name: String,
    /// The role whose active members the group reaches.
    pub role: RoleName,
    /// Staff only: how many active members it has.
    #[oai(skip_serializing_if_is_none)]
    pub active_members: Option<i64>,
}

#[derive(Object)]
pub struct GroupList {
    pub groups: Vec<GroupOut>,
}

pub struct GroupsApi(pub AppState);

#[OpenApi(tag = "super::Tag::People")]
impl GroupsApi {
    /// Staff groups the caller may address (clients: providers, front office, billing).
    #[oai(path = "/groups", method = "get", operation_id = "list_groups")]
    async fn list(&self, auth: BearerAuth, req: &Request) -> AppResult<Json<GroupList>> {
        let caller = caller(&self.0, &auth, req).await?;
        let groups = people_service::groups(&self.0, &caller).await?;
        Ok(Json(GroupList {
            groups: groups
                .into_iter()
                .map(|g| GroupOut {
                    id: format!("group:{}", g.group.as_str()),
                    name: g.group.display_name().into(),
                    role: g.group.role().into(),
                    active_members: g.active_members,
                })
                .collect(),
        }))
    }
}
