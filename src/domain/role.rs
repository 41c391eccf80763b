//! Roles and account statuses (DESIGN.md §1).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Provider,
    FrontOffice,
    Biller,
    ExternalAgent,
    Client,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Provider,
        Role::FrontOffice,
        Role::Biller,
        Role::ExternalAgent,
        Role::Client,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Provider => "provider",
            Role::FrontOffice => "front_office",
            Role::Biller => "biller",
            Role::ExternalAgent => "external_agent",
            Role::Client => "client",
        }
    }

    pub fn is_staff(self) -> bool {
        self != Role::Client
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Created; has not chosen a password yet.
    Invited,
    Active,
    /// Clients only: restricted in whom they may write to.
    Inactive,
    /// Cannot sign in; history kept.
    Disabled,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Invited,
        Status::Active,
        Status::Inactive,
        Status::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Invited => "invited",
            Status::Active => "active",
            Status::Inactive => "inactive",
            Status::Disabled => "disabled",
        }
    }

    /// Only activated accounts can sign in and receive messages.
    pub fn is_activated(self) -> bool {
        matches!(self, Status::Active | Status::Inactive)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL.into_iter().find(|r| r.as_str() == s).ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>(), Ok(status));
        }
    }

    #[test]
    fn only_active_and_inactive_are_activated() {
        assert!(Status::Active.is_activated());
        assert!(Status::Inactive.is_activated());
        assert!(!Status::Invited.is_activated());
        assert!(!Status::Disabled.is_activated());
    }
}
