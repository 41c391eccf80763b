//! Chart notes (DESIGN.md §2 Quick note): who may save one, the transcript a quick note
//! starts from, the CSV export of a thread, and the HL7 FHIR R4 DocumentReference an EHR
//! imports. Pure functions over plain data.

use crate::domain::Code;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::{Role, RuleViolation};

/// The longest chart note, in characters.
pub const MAX_NOTE_CHARS: usize = 200_000;

/// A provider or admin taking part in a thread saves a quick note from it, if it has
/// exactly one client.
pub fn may_take_quick_note(actor: Role, client_count: i64) -> Result<(), RuleViolation> {
    may_use_chart_notes(actor)?;
    if client_count != 1 {
        return Err(RuleViolation::new(
            Code::QuickNoteRequiresSingleClient,
            "A quick note needs a thread with exactly one client.",
        ));
    }
    Ok(())
}

/// Chart notes are clinical records: only providers and admins read and write them.
/// Everyone else is told nothing exists (404), as for anything one may not know of.
pub fn may_use_chart_notes(actor: Role) -> Result<(), RuleViolation> {
    if matches!(actor, Role::Provider | Role::Admin) {
        Ok(())
    } else {
        Err(RuleViolation::new(Code::NotFound, "No such chart note."))
    }
}

/// A chart note's content: not blank, at most [`MAX_NOTE_CHARS`], no control characters
/// other than line breaks and tabs.
pub fn parse_content(raw: &str) -> Result<String, RuleViolation> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(RuleViolation::field(
            Code::InvalidField,
            "content",
            "content must not be empty.",
        ));
    }
    if trimmed.chars().count() > MAX_NOTE_CHARS {
        return Err(RuleViolation::field(
            Code::InvalidField,
            "content",
            format!("content must be at most {MAX_NOTE_CHARS} characters."),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(RuleViolation::field(
            Code::InvalidField,
            "content",
            "content must not contain control characters.",
        ));
    }
    Ok(trimmed.to_string())
}

/// One message as it appears in a transcript or an export.
pub struct TranscriptMessage<'a> {
    pub sender: &'a str,
    pub role: Option<Role>,
    pub at: DateTime<Utc>,
    pub text: &'a str,
    pub attachments: Vec<&'a str>,
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The Markdown a quick note starts from: the subject, then each message's sender, time,
/// text and attachment names.
pub fn transcript(subject: &str, messages: &[TranscriptMessage<'_>]) -> String {
    let mut out = format!("# {subject}\n");
    for m in messages {
        let role = m
            .role
            .map(|r| format!(" ({})", r.as_str().replace('_', " ")))
            .unwrap_or_default();
        out.push_str(&format!(
            "\n---\n\n**{}**{role} — {}\n\n{}\n",
            m.sender,
            time(m.at),
            m.text
        ));
        if !m.attachments.is_empty() {
            out.push_str(&format!("\nAttachments: {}\n", m.attachments.join(", ")));
        }
    }
    out
}

/// Spreadsheets run cells that start with these as formulas; a leading apostrophe keeps
/// them text (OWASP "CSV injection").
fn defuse(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// A thread as CSV: a header, then one row per message (time, sender, role, text,
/// attachment names). Commas, quotes and line breaks are quoted as RFC 4180 says.
pub fn csv_export(messages: &[TranscriptMessage<'_>]) -> Result<String, csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer.write_record(["time", "sender", "role", "text", "attachments"])?;
    for m in messages {
        writer.write_record([
            time(m.at),
            defuse(m.sender),
            m.role.map(|r| r.as_str().to_string()).unwrap_or_default(),
            defuse(m.text),
            defuse(&m.attachments.join("; ")),
        ])?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// What a FHIR DocumentReference is made from.
pub struct NoteForFhir<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub client_name: &'a str,
    pub author_id: &'a str,
    pub author_name: &'a str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub source_thread_id: Option<&'a str>,
    pub content: &'a str,
}

/// The note as an HL7 FHIR R4 DocumentReference: a progress note about the client
/// (`Patient/<id>`), its Markdown base64-encoded in `content[0].attachment.data`.
pub fn fhir_document_reference(note: &NoteForFhir<'_>) -> Value {
    use data_encoding::BASE64;
    let mut doc = json!({
        "resourceType": "DocumentReference",
        "id": note.id,
        "meta": {"versionId": note.version.to_string(), "lastUpdated": time(note.updated_at)},
        "identifier": [{"system": "urn:confide:chart-note", "value": note.id}],
        "status": "current",
        "docStatus": if note.version > 1 { "amended" } else { "final" },
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
        "category": [{"coding": [{
            "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
            "code": "clinical-note",
            "display": "Clinical Note"
        }]}],
        "subject": {"reference": format!("Patient/{}", note.client_id), "display": note.client_name},
        "date": time(note.updated_at),
        "author": [{"reference": format!("Practitioner/{}", note.author_id), "display": note.author_name}],
        "description": "Chart note saved from a secure message thread",
        "content": [{"attachment": {
            "contentType": "text/markdown",
            "language": "en",
            "data": BASE64.encode(note.content.as_bytes()),
            "title": "Chart note",
            "creation": time(note.created_at)
        }}]
    });
    if let Some(thread) = note.source_thread_id {
        doc["context"] =
            json!({"related": [{"identifier": {"system": "urn:confide:thread", "value": thread}}]});
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    #[test]
    fn chart_notes_are_for_providers_and_admins_only() {
        assert!(may_use_chart_notes(Role::Provider).is_ok());
        assert!(may_use_chart_notes(Role::Admin).is_ok());
        for role in [
            Role::FrontOffice,
            Role::Biller,
            Role::ExternalAgent,
            Role::Client,
        ] {
            assert_eq!(may_use_chart_notes(role).unwrap_err().code, Code::NotFound);
            assert_eq!(
                may_take_quick_note(role, 1).unwrap_err().code,
                Code::NotFound
            );
        }
    }

    #[test]
    fn quick_notes_need_a_clinician_and_exactly_one_client() {
        assert!(may_take_quick_note(Role::Provider, 1).is_ok());
        assert!(may_take_quick_note(Role::Admin, 1).is_ok());
        assert_eq!(
            may_take_quick_note(Role::Provider, 2).unwrap_err().code,
            Code::QuickNoteRequiresSingleClient
        );
        assert_eq!(
            may_take_quick_note(Role::Provider, 0).unwrap_err().code,
            Code::QuickNoteRequiresSingleClient
        );
    }

    #[test]
    fn transcript_has_subject_senders_times_texts_and_attachments() {
        let t = transcript(
            "Sleep",
            &[TranscriptMessage {
                sender: "Pat",
                role: Some(Role::Provider),
                at: at(),
                text: "How did you sleep?",
                attachments: vec!["log.pdf"],
            }],
        );
        assert!(t.starts_with("# Sleep\n"));
        assert!(t.contains("**Pat** (provider) — 2026-09-21T"));
        assert!(t.contains("How did you sleep?"));
        assert!(t.contains("Attachments: log.pdf"));
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines_and_defuses_formulas() {
        let csv = csv_export(&[
            TranscriptMessage {
                sender: "Lee, \"Doc\"",
                role: Some(Role::Provider),
                at: at(),
                text: "line one\nline two",
                attachments: vec![],
            },
            TranscriptMessage {
                sender: "=cmd|' /C calc'!A0",
                role: None,
                at: at(),
                text: "+1",
                attachments: vec![],
            },
        ])
        .unwrap();
        let mut lines = csv.split("\r\n");
        assert_eq!(lines.next(), Some("time,sender,role,text,attachments"));
        assert!(csv.contains("\"Lee, \"\"Doc\"\"\",provider,\"line one\nline two\","));
        assert!(csv.contains(",'=cmd|' /C calc'!A0,,'+1,"));
    }

    #[test]
    fn fhir_document_reference_has_the_required_elements() {
        let doc = fhir_document_reference(&NoteForFhir {
            id: "n1",
            client_id: "c1",
            client_name: "Casey",
            author_id: "a1",
            author_name: "Pat",
            created_at: at(),
            updated_at: at(),
            version: 1,
            source_thread_id: Some("t1"),
            content: "Hello",
        });
        assert_eq!(doc["resourceType"], "DocumentReference");
        assert_eq!(doc["status"], "current");
        assert_eq!(doc["subject"]["reference"], "Patient/c1");
        assert_eq!(doc["content"][0]["attachment"]["data"], "SGVsbG8=");
    }
}
