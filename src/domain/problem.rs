//! Every problem the product reports: its stable code and its HTTP status, in one table.
//! Rules, services and pages name a problem by its variant; nothing matches on a string.

/// Declares the problem codes: the variant, the stable name sent as `code`, the status.
macro_rules! problem_codes {
    ($( $(#[$doc:meta])* $variant:ident = ($name:literal, $status:literal), )*) => {
        /// A stable, machine-readable problem code (sent as `code` in problem+json).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in the table's order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable name sent to clients.
            pub const fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }

            /// The HTTP status this problem is reported with.
            pub const fn status(self) -> u16 {
                match self { $(Code::$variant => $status,)* }
            }
        }
    };
}

problem_codes! {
    // 400: the request is wrong; `field` names the culprit.
    /// A field's value is not acceptable.
    InvalidField = ("invalid_field", 400),
    /// The body is not the JSON this route takes.
    InvalidJson = ("invalid_json", 400),
    /// The request as a whole cannot be read.
    InvalidRequest = ("invalid_request", 400),
    /// A search query does not parse.
    InvalidQuery = ("invalid_query", 400),
    /// A search query has too many terms or clauses.
    QueryTooComplex = ("query_too_complex", 400),
    /// A search query is too long.
    QueryTooLong = ("query_too_long", 400),
    /// A message body is over the limit.
    BodyTooLong = ("body_too_long", 400),
    /// A password is too short or too common.
    WeakPassword = ("weak_password", 400),
    /// A recipient has not accepted their invitation yet.
    RecipientNotActivated = ("recipient_not_activated", 400),
    /// A group has no active member to receive the message.
    GroupEmpty = ("group_empty", 400),
    /// No such staff group.
    UnknownGroup = ("unknown_group", 400),
    /// The upload is not well-formed multipart.
    InvalidMultipart = ("invalid_multipart", 400),
    /// An uploaded file is empty.
    AttachmentEmpty = ("attachment_empty", 400),
    /// An uploaded file's content is not an allowed type (or not what its name says).
    AttachmentTypeNotAllowed = ("attachment_type_not_allowed", 400),
    /// More files in one upload than allowed.
    TooManyFiles = ("too_many_files", 400),
    /// A named attachment is not a pending upload of the caller's.
    AttachmentNotFound = ("attachment_not_found", 400),
    /// The current password given is wrong.
    CurrentPasswordIncorrect = ("current_password_incorrect", 400),
    /// The status change asked for is not one the caller may make.
    StatusNotAllowed = ("status_not_allowed", 400),
    /// The role change asked for is not allowed.
    RoleChangeNotAllowed = ("role_change_not_allowed", 400),
    /// A conversation would have more participants than the practice allows.
    TooManyParticipants = ("too_many_participants", 400),

    // 401: no valid session.
    /// No session, or not a valid one.
    Unauthenticated = ("unauthenticated", 401),
    /// Wrong practice, email or password (never says which).
    InvalidCredentials = ("invalid_credentials", 401),
    /// The session has ended.
    SessionExpired = ("session_expired", 401),

    // 403: a rule forbids it.
    /// The caller's role may not do this.
    Forbidden = ("forbidden", 403),
    /// Nobody changes their own role or status.
    CannotChangeOwnAccount = ("cannot_change_own_account", 403),
    /// The caller may not write to this recipient.
    RecipientNotAllowed = ("recipient_not_allowed", 403),
    /// An inactive client may not write.
    ClientInactive = ("client_inactive", 403),
    /// Only the person gives or withdraws their own consent.
    ConsentIsPersonal = ("consent_is_personal", 403),
    /// The client may only reply until staff allow them to start threads.
    StartingThreadsNotAllowed = ("starting_threads_not_allowed", 403),

    // 404: not found, or not the caller's to know of.
    /// No such resource visible to the caller.
    NotFound = ("not_found", 404),
    /// A link's token is unknown, used or expired.
    InvalidToken = ("invalid_token", 404),
    /// The method is not allowed on this route.
    MethodNotAllowed = ("method_not_allowed", 405),
    /// The body did not arrive in time.
    RequestTimeout = ("request_timeout", 408),

    // 409: conflicts with the current state.
    /// The person already has a pending invitation.
    InvitationPending = ("invitation_pending", 409),
    /// Someone in the practice already uses this email.
    EmailTaken = ("email_taken", 409),
    /// Another practice already uses this slug.
    SlugTaken = ("slug_taken", 409),
    /// The thread takes no replies from the caller.
    RepliesNotAllowed = ("replies_not_allowed", 409),
    /// The data is under a legal hold: it cannot be deleted until an admin releases it.
    LegalHold = ("legal_hold", 409),
    /// The caller may not react in this thread (a client among several clients).
    ReactionsNotAllowed = ("reactions_not_allowed", 409),
    /// The conversation has not started yet: only staff post before its start.
    ConversationNotStarted = ("conversation_not_started", 409),
    /// The thread is completed: nobody posts, reacts or adds notes until staff reopen it.
    ThreadCompleted = ("thread_completed", 409),
    /// The person already pinned as many threads as one may.
    TooManyPins = ("too_many_pins", 409),
    /// The caller already has a folder of this name.
    FolderNameTaken = ("folder_name_taken", 409),
    /// A quick note needs a thread with exactly one client.
    QuickNoteRequiresSingleClient = ("quick_note_requires_single_client", 409),
    /// The idempotency key was used with another request.
    IdempotencyKeyReused = ("idempotency_key_reused", 409),
    /// The draft changed since it was read.
    DraftChanged = ("draft_changed", 409),
    /// The attachment was already sent.
    AttachmentSent = ("attachment_sent", 409),
    /// The attachment belongs to a draft.
    AttachmentInDraft = ("attachment_in_draft", 409),
    /// The person has no invitation to resend.
    NotInvited = ("not_invited", 409),
    /// Someone else changed the record at the same time.
    EditConflict = ("edit_conflict", 409),

    // 410: gone.
    /// The sync state is too old or not one this server handed out: list again.
    CannotCalculateChanges = ("cannot_calculate_changes", 410),

    // 413, 415, 429: sizes and rates.
    /// The request body is too large.
    PayloadTooLarge = ("payload_too_large", 413),
    /// An uploaded file is over the size limit.
    AttachmentTooLarge = ("attachment_too_large", 413),
    /// The caller's pending uploads are over their quota.
    UploadQuotaExceeded = ("upload_quota_exceeded", 413),
    /// The body is not in a media type this route takes.
    UnsupportedMediaType = ("unsupported_media_type", 415),
    /// Too many failed sign-ins; see Retry-After.
    TooManyAttempts = ("too_many_attempts", 429),
    /// Too many uploads in the last hour.
    UploadRateExceeded = ("upload_rate_exceeded", 429),
    /// Too many drafts.
    DraftQuotaExceeded = ("draft_quota_exceeded", 429),

    // 5xx: on the server's side; nothing was changed.
    /// An internal error; the cause is logged, never sent.
    InternalError = ("internal_error", 500),
    /// A stored file no longer matches its checksum.
    AttachmentCorrupted = ("attachment_corrupted", 500),
    /// The database cannot be reached.
    DatabaseUnreachable = ("database_unreachable", 503),
    /// The answer took longer than the request timeout.
    ServerTimeout = ("server_timeout", 503),
    /// The search index is not ready.
    SearchUnavailable = ("search_unavailable", 503),
}

/// A refusal by a rule: a problem code, the field at fault and a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleViolation {
    pub code: Code,
    pub field: Option<&'static str>,
    pub message: String,
}

impl RuleViolation {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            field: None,
            message: message.into(),
        }
    }

    pub fn field(code: Code, field: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            field: Some(field),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Code;
    use std::collections::HashSet;

    #[test]
    fn every_code_has_one_name_and_an_error_status() {
        let names: HashSet<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Code::ALL.len(), "two codes share a name");
        for code in Code::ALL {
            assert!((400..600).contains(&code.status()), "{code:?}");
            assert!(code
                .as_str()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }
}
