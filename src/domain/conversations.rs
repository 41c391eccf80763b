//! The conversation rules (DESIGN.md §2 "Conversations"): the two kinds of thread, who
//! hosts a conversation and how many take part, announcements, the scheduled start,
//! completing a thread, reactions, internal notes, read receipts and the practice's own
//! settings. Pure functions over roles, times and counts.

use super::values::bounded_chars;
use super::{Code, Role, RuleViolation};

/// The kind of a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThreadKind {
    /// An email-style thread: the reply rules of DESIGN.md §2 "Threads and replies".
    #[default]
    Message,
    /// A group conversation opened by a provider or admin with a fixed set of people:
    /// everyone may reply, and the clients know of each other.
    Conversation,
}

impl ThreadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ThreadKind::Message => "message",
            ThreadKind::Conversation => "conversation",
        }
    }

    pub fn parse(raw: &str) -> Result<ThreadKind, RuleViolation> {
        match raw {
            "message" => Ok(ThreadKind::Message),
            "conversation" => Ok(ThreadKind::Conversation),
            _ => Err(RuleViolation::field(
                Code::InvalidField,
                "kind",
                "kind must be \"message\" or \"conversation\".",
            )),
        }
    }
}

/// The practice's default for `conversation_max_participants`.
pub const DEFAULT_MAX_PARTICIPANTS: i64 = 25;
/// The bounds an admin may set `conversation_max_participants` within.
pub const MAX_PARTICIPANTS_RANGE: (i64, i64) = (2, 500);
/// The longest announcement.
pub const ANNOUNCEMENT_MAX_CHARS: usize = 120;
/// The longest internal note.
pub const NOTE_MAX_CHARS: usize = 10_000;
/// How far ahead a conversation's start may be.
pub const MAX_START_AHEAD_MS: i64 = 366 * 86_400_000;

/// Only a provider or an admin opens (hosts) a conversation.
pub fn may_host(role: Role) -> Result<(), RuleViolation> {
    if matches!(role, Role::Provider | Role::Admin) {
        Ok(())
    } else {
        Err(RuleViolation::field(
            Code::Forbidden,
            "kind",
            "Only providers and admins open conversations.",
        ))
    }
}

/// A conversation has at most `max` participants, the host included.
pub fn check_participant_count(participants: usize, max: i64) -> Result<(), RuleViolation> {
    if participants as i64 > max {
        return Err(RuleViolation::field(
            Code::TooManyParticipants,
            "to",
            format!("to: a conversation has at most {max} participants, you included."),
        ));
    }
    Ok(())
}

/// A conversation's start: only for conversations, after now and at most a year ahead.
pub fn check_starts_at(kind: ThreadKind, starts_at: i64, now: i64) -> Result<(), RuleViolation> {
    if kind != ThreadKind::Conversation {
        return Err(RuleViolation::field(
            Code::InvalidField,
            "starts_at",
            "starts_at is for conversations only (kind \"conversation\").",
        ));
    }
    if starts_at > now + MAX_START_AHEAD_MS {
        return Err(RuleViolation::field(
            Code::InvalidField,
            "starts_at",
            "starts_at must be within a year from now.",
        ));
    }
    Ok(())
}

/// Whether `viewer` must not learn who a participant of role `participant` is. In a
/// message thread, clients never learn who the other clients are (BCC semantics); in a
/// conversation they joined a group and see each other's names. External agents are
/// invisible to clients in both.
pub fn hidden_from(kind: ThreadKind, viewer: Role, participant: Role) -> bool {
    match kind {
        ThreadKind::Message => super::mailbox::hidden_from(viewer, participant),
        ThreadKind::Conversation => viewer == Role::Client && participant == Role::ExternalAgent,
    }
}

/// "Convert to a group" starts a conversation, never a message thread.
pub fn check_linked_from(kind: ThreadKind) -> Result<(), RuleViolation> {
    if kind != ThreadKind::Conversation {
        return Err(RuleViolation::field(
            Code::InvalidField,
            "linked_from",
            "linked_from is for a conversation started from a thread (kind \"conversation\").",
        ));
    }
    Ok(())
}

/// Whether the viewer sees the participants' email addresses: the host of a conversation.
pub fn sees_emails(kind: ThreadKind, viewer_is_host: bool) -> bool {
    kind == ThreadKind::Conversation && viewer_is_host
}

/// A thread's state that decides whether anyone may post in it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub starts_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub now: i64,
}

impl Timing {
    pub fn is_completed(&self) -> bool {
        self.completed_at.is_some()
    }

    pub fn has_started(&self) -> bool {
        self.starts_at.is_none_or(|at| at <= self.now)
    }
}

/// Nobody posts, reacts or adds notes in a completed thread.
pub fn check_not_completed(timing: Timing) -> Result<(), RuleViolation> {
    if timing.is_completed() {
        return Err(RuleViolation::new(
            Code::ThreadCompleted,
            "This thread is completed: nobody can post, react or add notes until staff reopen it.",
        ));
    }
    Ok(())
}

/// Whether `role` may post now: not in a completed thread, and before a conversation's
/// start only staff.
pub fn check_may_post(role: Role, timing: Timing) -> Result<(), RuleViolation> {
    check_not_completed(timing)?;
    if !role.is_staff() && !timing.has_started() {
        return Err(RuleViolation::new(
            Code::ConversationNotStarted,
            "This conversation has not started yet; you can write once it starts.",
        ));
    }
    Ok(())
}

/// The actions only staff participants take on a thread: the announcement, completing
/// and reopening, internal notes, pinning messages, sharing.
pub fn check_staff_action(role: Role) -> Result<(), RuleViolation> {
    if role.is_staff() {
        Ok(())
    } else {
        Err(RuleViolation::new(
            Code::Forbidden,
            "Only staff taking part in the thread can do this.",
        ))
    }
}

/// An announcement: 1–120 characters after trimming, no control characters.
pub fn parse_announcement(raw: &str) -> Result<String, RuleViolation> {
    bounded_chars("text", raw, 1, ANNOUNCEMENT_MAX_CHARS)
}

/// The reactions one may give.
pub const REACTIONS: [&str; 6] = ["👍", "❤️", "🙏", "😊", "😮", "😢"];

/// A reaction's name in words, for screen readers.
pub fn reaction_name(emoji: &str) -> &'static str {
    match emoji {
        "👍" => "Thumbs up",
        "❤️" => "Heart",
        "🙏" => "Thank you",
        "😊" => "Smile",
        "😮" => "Surprised",
        "😢" => "Sad",
        _ => "Reaction",
    }
}

/// A reaction from the fixed set. The heart is also taken without its variation selector.
pub fn parse_reaction(raw: &str) -> Result<&'static str, RuleViolation> {
    let raw = if raw == "❤" { "❤️" } else { raw };
    REACTIONS.into_iter().find(|r| *r == raw).ok_or_else(|| {
        RuleViolation::field(
            Code::InvalidField,
            "emoji",
            format!("emoji must be one of {}.", REACTIONS.join(" ")),
        )
    })
}

/// Whether `role` may react in a thread: not when it is completed or (for a client) not
/// yet started, and in a message thread with two or more clients clients cannot react,
/// since a reaction would reveal them to the others.
pub fn check_may_react(
    role: Role,
    kind: ThreadKind,
    client_count: i64,
    timing: Timing,
) -> Result<(), RuleViolation> {
    check_may_post(role, timing)?;
    if role == Role::Client && kind == ThreadKind::Message && client_count >= 2 {
        return Err(RuleViolation::new(
            Code::ReactionsNotAllowed,
            "In a thread with several clients, clients cannot react.",
        ));
    }
    Ok(())
}

/// An internal note: 1–10,000 characters after trimming.
pub fn parse_note(raw: &str) -> Result<String, RuleViolation> {
    let trimmed = raw.trim();
    if trimmed
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(RuleViolation::field(
            Code::InvalidField,
            "body",
            "body must not contain control characters.",
        ));
    }
    match trimmed.chars().count() {
        0 => Err(RuleViolation::field(
            Code::InvalidField,
            "body",
            "body is required.",
        )),
        n if n > NOTE_MAX_CHARS => Err(RuleViolation::field(
            Code::BodyTooLong,
            "body",
            format!("body must be at most {NOTE_MAX_CHARS} characters."),
        )),
        _ => Ok(trimmed.to_string()),
    }
}

/// Who may see an attachment: everyone in the thread, unless its sender limited it to some
/// participants (`audience` not empty); then those and the sender only.
pub fn may_see_file(viewer: &str, uploader: &str, audience: &[&str]) -> bool {
    audience.is_empty() || viewer == uploader || audience.contains(&viewer)
}

/// Checks `attachment_visibility` (attachment id → the participants who may see it) on a
/// message: only in a conversation, only from staff, only for the message's own
/// attachments, each for at least one participant of the thread. Person ids may be
/// written `user:<id>`; returns the map with bare ids.
pub fn check_attachment_visibility(
    kind: ThreadKind,
    sender: Role,
    attachment_ids: &[String],
    visibility: &std::collections::BTreeMap<String, Vec<String>>,
    participants: &[String],
) -> Result<std::collections::BTreeMap<String, Vec<String>>, RuleViolation> {
    let field = "attachment_visibility";
    if visibility.is_empty() {
        return Ok(Default::default());
    }
    if kind != ThreadKind::Conversation {
        return Err(RuleViolation::field(
            Code::InvalidField,
            field,
            "attachment_visibility: files can be limited to some participants in conversations only.",
        ));
    }
    if !sender.is_staff() {
        return Err(RuleViolation::field(
            Code::Forbidden,
            field,
            "Only staff limit who sees a file.",
        ));
    }
    let mut out = std::collections::BTreeMap::new();
    for (attachment, people) in visibility {
        if !attachment_ids.contains(attachment) {
            return Err(RuleViolation::field(
                Code::InvalidField,
                field,
                format!("attachment_visibility: {attachment} is not among this message's attachment_ids."),
            ));
        }
        let mut ids: Vec<String> = Vec::new();
        for person in people {
            let id = person.strip_prefix("user:").unwrap_or(person);
            if !participants.iter().any(|p| p == id) {
                return Err(RuleViolation::field(
                    Code::InvalidField,
                    field,
                    format!("attachment_visibility: {person} does not take part in this thread."),
                ));
            }
            if !ids.iter().any(|i| i == id) {
                ids.push(id.to_string());
            }
        }
        if ids.is_empty() {
            return Err(RuleViolation::field(
                Code::InvalidField,
                field,
                format!("attachment_visibility: name at least one person for {attachment}."),
            ));
        }
        out.insert(attachment.clone(), ids);
    }
    Ok(out)
}

/// The people named to share a thread with: `user:<id>` (or a bare id), 1 to 50 of them,
/// duplicates dropped.
pub fn parse_people(raw: &[String]) -> Result<Vec<String>, RuleViolation> {
    if raw.is_empty() || raw.len() > 50 {
        return Err(RuleViolation::field(
            Code::InvalidField,
            "people",
            "people: name 1 to 50 staff members (user:<id>).",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for entry in raw {
        let id = entry.strip_prefix("user:").unwrap_or(entry);
        if !crate::domain::ids::PersonId::is_well_formed(id) {
            return Err(RuleViolation::field(
                Code::InvalidField,
                "people",
                format!("people: {entry:?} is not a person (user:<id>)."),
            ));
        }
        if !out.iter().any(|o| o == id) {
            out.push(id.to_string());
        }
    }
    Ok(out)
}

/// Only activated staff are added to an existing thread; never a client, whose view
/// would then hold a history that was not written to them.
pub fn check_share_with(role: Role, status: super::Status) -> Result<(), RuleViolation> {
    if role == Role::Client {
        return Err(RuleViolation::field(
            Code::RecipientNotAllowed,
            "people",
            "people: a client is never added to an existing thread (its history would reach \
             them); open a new conversation instead.",
        ));
    }
    if !status.is_activated() {
        return Err(RuleViolation::field(
            Code::RecipientNotActivated,
            "people",
            "people: only active staff can be added.",
        ));
    }
    Ok(())
}

/// A staff member's autoresponder: its text and the periods it answers in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Autoresponder {
    pub text: String,
    pub periods: Vec<Period>,
}

/// From `from` until `until` (ms since the epoch); `until: None` until switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Period {
    pub from: i64,
    pub until: Option<i64>,
}

/// The least time between two automatic replies to one client in one thread.
pub const AUTO_REPLY_EVERY_MS: i64 = 30 * 60_000;

impl Autoresponder {
    /// Checks an autoresponder as set: a text of 10 to 2,000 characters (it is sent as a
    /// message), 1 to 20 periods, each ending after it starts.
    pub fn parse(text: &str, periods: Vec<Period>) -> Result<Autoresponder, RuleViolation> {
        let text = bounded_chars("autoresponder.text", text, 10, 2_000).map_err(|mut v| {
            if text.trim().chars().count() < 10 {
                v.message = "autoresponder.text must be at least 10 characters.".into();
            }
            v
        })?;
        if periods.is_empty() || periods.len() > 20 {
            return Err(RuleViolation::field(
                Code::InvalidField,
                "autoresponder.periods",
                "autoresponder.periods: give 1 to 20 periods.",
            ));
        }
        if periods.iter().any(|p| p.until.is_some_and(|u| u <= p.from)) {
            return Err(RuleViolation::field(
                Code::InvalidField,
                "autoresponder.periods",
                "autoresponder.periods: each period must end after it starts.",
            ));
        }
        Ok(Autoresponder { text, periods })
    }

    pub fn is_active(&self, now: i64) -> bool {
        self.periods
            .iter()
            .any(|p| p.from <= now && p.until.is_none_or(|u| now < u))
    }
}

/// Whether a message gets an automatic reply from a staff member whose autoresponder is
/// active: only a client's own message (never an automatic one), at most once per client
/// and thread every 30 minutes.
pub fn answers(sender: Role, automatic: bool, last_reply_at: Option<i64>, now: i64) -> bool {
    sender == Role::Client
        && !automatic
        && last_reply_at.is_none_or(|at| now - at >= AUTO_REPLY_EVERY_MS)
}

/// How far ahead a message may be scheduled.
pub const MAX_SEND_AHEAD_MS: i64 = 366 * 86_400_000;

/// A scheduled send's time: in the future, at most a year ahead.
pub fn check_send_at(send_at: i64, now: i64) -> Result<(), RuleViolation> {
    if send_at <= now {
        return Err(RuleViolation::field(
            Code::InvalidField,
            "send_at",
            "send_at must be in the future (or leave it out to send now).",
        ));
    }
    if send_at > now + MAX_SEND_AHEAD_MS {
        return Err(RuleViolation::field(
            Code::InvalidField,
            "send_at",
            "send_at must be within a year from now.",
        ));
    }
    Ok(())
}

/// The most threads one person pins.
pub const MAX_PINNED_THREADS: i64 = 50;

/// One more pin, unless the person has pinned [`MAX_PINNED_THREADS`] threads already.
pub fn check_pin(pinned: i64) -> Result<(), RuleViolation> {
    if pinned >= MAX_PINNED_THREADS {
        return Err(RuleViolation::new(
            Code::TooManyPins,
            format!("You can pin at most {MAX_PINNED_THREADS} threads; unpin one first."),
        ));
    }
    Ok(())
}

/// Read receipts are for staff only; clients never see them.
pub fn sees_read_receipts(role: Role) -> bool {
    role.is_staff()
}

/// When each participant read a message, from their read rows `(person, through_seq,
/// read_at)`: the earliest read that covers the message's number. The sender is left out.
pub fn read_by<'a>(
    seq: i64,
    sender_id: &str,
    reads: &'a [(String, i64, i64)],
) -> Vec<(&'a str, i64)> {
    let mut out: Vec<(&str, i64)> = Vec::new();
    for (person, through, at) in reads {
        if person == sender_id || *through < seq {
            continue;
        }
        match out.iter_mut().find(|(p, _)| p == person) {
            Some((_, first)) => *first = (*first).min(*at),
            None => out.push((person, *at)),
        }
    }
    out.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
    out
}

/// The longest body a message of `role` may have: clients are held to the practice's own
/// limit when it is below the global one.
pub fn body_limit(role: Role, global: usize, client_limit: Option<i64>) -> usize {
    match (role, client_limit) {
        (Role::Client, Some(limit)) if limit > 0 => global.min(limit as usize),
        _ => global,
    }
}

/// A client created while the practice does not let new clients start threads may only
/// reply until staff allow them.
pub fn check_may_start_thread(role: Role, reply_only: bool) -> Result<(), RuleViolation> {
    if role == Role::Client && reply_only {
        return Err(RuleViolation::new(
            Code::StartingThreadsNotAllowed,
            "You can reply to your care team's messages, but not start a new thread yet; \
             the practice will let you once they have set up your care.",
        ));
    }
    Ok(())
}

/// A practice's own settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PracticeSettings {
    pub client_message_max_chars: Option<i64>,
    pub new_clients_can_start_threads: bool,
    pub conversation_max_participants: i64,
    /// Threads whose last activity is older than this many years are purged (unless a
    /// legal hold covers them); `None`: kept forever.
    pub retention_years: Option<i64>,
}

/// The retention a practice may choose, in years.
pub const RETENTION_YEARS_RANGE: (i64, i64) = (1, 100);

impl Default for PracticeSettings {
    fn default() -> Self {
        PracticeSettings {
            client_message_max_chars: None,
            new_clients_can_start_threads: true,
            conversation_max_participants: DEFAULT_MAX_PARTICIPANTS,
            retention_years: None,
        }
    }
}

impl PracticeSettings {
    /// Checks settings an admin asks for; `global_max` is the server's body limit.
    pub fn check(&self, global_max: usize) -> Result<(), RuleViolation> {
        if let Some(limit) = self.client_message_max_chars {
            if limit < 10 || limit > global_max as i64 {
                return Err(RuleViolation::field(
                    Code::InvalidField,
                    "client_message_max_chars",
                    format!("client_message_max_chars must be 10 to {global_max}, or null."),
                ));
            }
        }
        let (lo, hi) = MAX_PARTICIPANTS_RANGE;
        if !(lo..=hi).contains(&self.conversation_max_participants) {
            return Err(RuleViolation::field(
                Code::InvalidField,
                "conversation_max_participants",
                format!("conversation_max_participants must be {lo} to {hi}."),
            ));
        }
        let (lo, hi) = RETENTION_YEARS_RANGE;
        if self
            .retention_years
            .is_some_and(|y| !(lo..=hi).contains(&y))
        {
            return Err(RuleViolation::field(
                Code::InvalidField,
                "retention_years",
                format!("retention_years must be {lo} to {hi} years, or empty (null) to keep threads forever."),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    const NOW: i64 = 1_000_000;

    fn open() -> Timing {
        Timing {
            starts_at: None,
            completed_at: None,
            now: NOW,
        }
    }

    #[test]
    fn only_providers_and_admins_host_conversations() {
        assert!(may_host(Provider).is_ok());
        assert!(may_host(Admin).is_ok());
        for role in [FrontOffice, Biller, ExternalAgent, Client] {
            assert_eq!(may_host(role).unwrap_err().code, Code::Forbidden);
        }
        assert_eq!(ThreadKind::parse("group").unwrap_err().field, Some("kind"));
        assert_eq!(
            ThreadKind::parse("conversation"),
            Ok(ThreadKind::Conversation)
        );
    }

    #[test]
    fn a_conversation_has_at_most_the_practice_maximum() {
        assert!(check_participant_count(25, 25).is_ok());
        assert_eq!(
            check_participant_count(26, 25).unwrap_err().code,
            Code::TooManyParticipants
        );
    }

    #[test]
    fn clients_in_a_conversation_see_each_other_but_never_external_agents() {
        assert!(!hidden_from(ThreadKind::Conversation, Client, Client));
        assert!(hidden_from(ThreadKind::Conversation, Client, ExternalAgent));
        assert!(hidden_from(ThreadKind::Message, Client, Client));
        assert!(!hidden_from(ThreadKind::Message, Provider, Client));
        assert!(sees_emails(ThreadKind::Conversation, true));
        assert!(!sees_emails(ThreadKind::Conversation, false));
        assert!(!sees_emails(ThreadKind::Message, true));
    }

    #[test]
    fn before_the_start_only_staff_post_and_after_completion_nobody() {
        let before = Timing {
            starts_at: Some(NOW + 1),
            ..open()
        };
        assert!(check_may_post(Provider, before).is_ok());
        assert_eq!(
            check_may_post(Client, before).unwrap_err().code,
            Code::ConversationNotStarted
        );
        let started = Timing {
            starts_at: Some(NOW),
            ..open()
        };
        assert!(check_may_post(Client, started).is_ok());
        let done = Timing {
            completed_at: Some(NOW),
            ..open()
        };
        for role in [Provider, Client] {
            assert_eq!(
                check_may_post(role, done).unwrap_err().code,
                Code::ThreadCompleted
            );
        }
        assert!(check_starts_at(ThreadKind::Message, NOW, NOW).is_err());
        assert!(check_starts_at(ThreadKind::Conversation, NOW + 1, NOW).is_ok());
        assert!(
            check_starts_at(ThreadKind::Conversation, NOW + MAX_START_AHEAD_MS + 1, NOW).is_err()
        );
    }

    #[test]
    fn reactions_come_from_the_fixed_set_and_not_from_clients_among_clients() {
        assert_eq!(parse_reaction("👍"), Ok("👍"));
        assert_eq!(parse_reaction("❤"), Ok("❤️"));
        assert_eq!(parse_reaction("🔥").unwrap_err().field, Some("emoji"));
        assert_eq!(
            check_may_react(Client, ThreadKind::Message, 2, open())
                .unwrap_err()
                .code,
            Code::ReactionsNotAllowed
        );
        assert!(check_may_react(Client, ThreadKind::Conversation, 5, open()).is_ok());
        assert!(check_may_react(Provider, ThreadKind::Message, 2, open()).is_ok());
        assert!(check_may_react(Client, ThreadKind::Message, 1, open()).is_ok());
    }

    #[test]
    fn announcements_and_notes_are_bounded() {
        assert_eq!(parse_announcement("  Hi  ").unwrap(), "Hi");
        assert!(parse_announcement(&"a".repeat(120)).is_ok());
        assert!(parse_announcement(&"a".repeat(121)).is_err());
        assert!(parse_announcement("   ").is_err());
        assert_eq!(parse_note("ok").unwrap(), "ok");
        assert_eq!(parse_note(" ").unwrap_err().field, Some("body"));
        assert_eq!(
            parse_note(&"n".repeat(NOTE_MAX_CHARS + 1))
                .unwrap_err()
                .code,
            Code::BodyTooLong
        );
    }

    #[test]
    fn a_message_is_read_by_whoever_read_through_it_first() {
        let reads = vec![
            ("b".to_string(), 0, 10),
            ("b".to_string(), 2, 30),
            ("c".to_string(), 1, 20),
            ("a".to_string(), 5, 5),
        ];
        assert_eq!(read_by(0, "a", &reads), vec![("b", 10), ("c", 20)]);
        assert_eq!(read_by(2, "a", &reads), vec![("b", 30)]);
        assert!(read_by(3, "a", &reads).is_empty());
        assert!(sees_read_receipts(Biller));
        assert!(!sees_read_receipts(Client));
    }

    #[test]
    fn a_limited_file_is_seen_by_its_audience_and_sender_only() {
        assert!(may_see_file("a", "s", &[]));
        assert!(may_see_file("s", "s", &["a"]));
        assert!(may_see_file("a", "s", &["a", "b"]));
        assert!(!may_see_file("c", "s", &["a", "b"]));
        let ids = vec!["f1".to_string()];
        let people = vec!["s".to_string(), "a".to_string(), "b".to_string()];
        let ask = |k: ThreadKind, r: Role, v: &[(&str, &[&str])]| {
            let map = v
                .iter()
                .map(|(f, p)| (f.to_string(), p.iter().map(|x| x.to_string()).collect()))
                .collect();
            check_attachment_visibility(k, r, &ids, &map, &people)
        };
        let ok = ask(
            ThreadKind::Conversation,
            Provider,
            &[("f1", &["user:a", "a"])],
        )
        .unwrap();
        assert_eq!(ok["f1"], vec!["a".to_string()]);
        assert!(ask(ThreadKind::Message, Provider, &[("f1", &["a"])]).is_err());
        assert_eq!(
            ask(ThreadKind::Conversation, Client, &[("f1", &["a"])])
                .unwrap_err()
                .code,
            Code::Forbidden
        );
        assert!(ask(ThreadKind::Conversation, Provider, &[("f2", &["a"])]).is_err());
        assert!(ask(ThreadKind::Conversation, Provider, &[("f1", &["z"])]).is_err());
        assert!(ask(ThreadKind::Conversation, Provider, &[("f1", &[])]).is_err());
        assert!(ask(ThreadKind::Message, Client, &[]).unwrap().is_empty());
    }

    #[test]
    fn an_autoresponder_answers_clients_once_per_half_hour_in_its_periods() {
        let a = Autoresponder::parse(
            "Away until Monday.",
            vec![Period {
                from: 100,
                until: Some(200),
            }],
        )
        .unwrap();
        assert!(!a.is_active(99) && a.is_active(100) && !a.is_active(200));
        let open = Autoresponder::parse(
            "Away for now, sorry.",
            vec![Period {
                from: 0,
                until: None,
            }],
        )
        .unwrap();
        assert!(open.is_active(i64::MAX));
        assert!(Autoresponder::parse("short", vec![]).is_err());
        assert_eq!(
            Autoresponder::parse("Away until Monday.", vec![])
                .unwrap_err()
                .field,
            Some("autoresponder.periods")
        );
        let backwards = vec![Period {
            from: 5,
            until: Some(5),
        }];
        assert!(Autoresponder::parse("Away until Monday.", backwards).is_err());
        assert!(answers(Client, false, None, NOW));
        assert!(!answers(Provider, false, None, NOW));
        assert!(!answers(Client, true, None, NOW));
        assert!(!answers(
            Client,
            false,
            Some(NOW - AUTO_REPLY_EVERY_MS + 1),
            NOW
        ));
        assert!(answers(Client, false, Some(NOW - AUTO_REPLY_EVERY_MS), NOW));
    }

    #[test]
    fn practice_settings_are_checked() {
        assert!(PracticeSettings::default().check(100_000).is_ok());
        let low = PracticeSettings {
            client_message_max_chars: Some(9),
            ..Default::default()
        };
        assert_eq!(
            low.check(100_000).unwrap_err().field,
            Some("client_message_max_chars")
        );
        let many = PracticeSettings {
            conversation_max_participants: 501,
            ..Default::default()
        };
        assert!(many.check(100_000).is_err());
        for (years, ok) in [
            (None, true),
            (Some(1), true),
            (Some(100), true),
            (Some(0), false),
            (Some(101), false),
        ] {
            let kept = PracticeSettings {
                retention_years: years,
                ..Default::default()
            };
            match kept.check(100_000) {
                Ok(()) => assert!(ok, "{years:?}"),
                Err(e) => assert_eq!((ok, e.field), (false, Some("retention_years"))),
            }
        }
        assert_eq!(body_limit(Client, 100_000, Some(500)), 500);
        assert_eq!(body_limit(Provider, 100_000, Some(500)), 100_000);
        assert_eq!(body_limit(Client, 100_000, None), 100_000);
        assert_eq!(
            check_may_start_thread(Client, true).unwrap_err().code,
            Code::StartingThreadsNotAllowed
        );
        assert!(check_may_start_thread(Provider, true).is_ok());
    }
}
