//! The OpenAPI document as served: poem-openapi's, made exact where its derives cannot
//! say what the server does (issue 19). Every change here declares a rule the handlers
//! already enforce; none relaxes one.
//!
//! - A documented field that holds a reference is written by poem-openapi as
//!   `allOf: [{$ref}, {description}]`, which code generators drop; it becomes the plain
//!   reference.
//! - Request bodies refuse fields they do not know (`deny_unknown_fields`), so their
//!   objects say `additionalProperties: false`, and their strings refuse NUL.
//! - Every operation that takes a body may answer 415 (a body that is not JSON, or not
//!   multipart for uploads).
//! - Parameters with a closed set of values or a format say so.
//! - An event stream is described event by event, as OpenAPI 3.2 and schemathesis read
//!   it: `event`, `id`, and `data` holding JSON of the event's schema.
//!
//! [`Methods`] answers which methods a path takes, for the `Allow` header of a 405.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use crate::domain::chart::MAX_NOTE_CHARS;
use crate::domain::conversations::{
    ANNOUNCEMENT_MAX_CHARS, MAX_PARTICIPANTS_RANGE, NOTE_MAX_CHARS, REACTIONS,
    RETENTION_YEARS_RANGE,
};
use crate::service::mailbox::filing::MAX_BULK;
use crate::service::mailbox::folders::RESERVED;

/// A string without NUL, which the server refuses in bodies and addresses alike.
const NO_NUL: &str = "^[^\\u0000]*$";

/// What the server checks of a request's text field beyond "a string".
#[derive(Clone, Copy)]
enum Text {
    /// Something besides white space, at most this many characters, no control character
    /// (names, as `domain::values` parses them).
    Name(u32),
    /// Something besides white space (the server trims, then requires a value).
    NonBlank,
    /// An email address (`domain::values::EmailAddress`).
    Email,
    /// `min` to `max` characters once trimmed, no control character
    /// (`domain::values::bounded_chars`).
    Bounded(u32, u32),
    /// An international number: `+` and 8 to 15 digits, with spaces, dashes or
    /// parentheses between (`domain::values::MobileNumber`); empty clears it.
    Mobile,
    /// Something besides white space, at most this many characters, no control character
    /// but line breaks and tabs (notes, as `parse_note` and `chart::parse_content` read
    /// them).
    Multiline(usize),
}

/// The request fields whose text the server checks, by schema and field.
const TEXT_FIELDS: &[(&str, &str, Text)] = &[
    ("SignInRequest", "practice", Text::NonBlank),
    ("SignInRequest", "email", Text::Email),
    ("SignInRequest", "password", Text::NonBlank),
    ("ResetRequest", "email", Text::Email),
    ("CreatePersonRequest", "name", Text::Name(200)),
    ("CreatePersonRequest", "email", Text::Email),
    ("CreatePersonRequest", "mobile", Text::Mobile),
    ("UpdatePersonRequest", "name", Text::Name(200)),
    ("UpdatePersonRequest", "email", Text::Email),
    ("UpdatePersonRequest", "mobile", Text::Mobile),
    ("UpdateMeRequest", "name", Text::Name(200)),
    ("UpdateMeRequest", "email", Text::Email),
    ("UpdateMeRequest", "mobile", Text::Mobile),
    ("FolderRequest", "name", Text::Name(100)),
    ("SearchRequest", "q", Text::NonBlank),
    ("AutoresponderBody", "text", Text::Bounded(10, 2_000)),
    (
        "AnnouncementRequest",
        "text",
        Text::Name(ANNOUNCEMENT_MAX_CHARS as u32),
    ),
    ("NoteRequest", "body", Text::Multiline(NOTE_MAX_CHARS)),
    (
        "QuickNoteRequest",
        "content",
        Text::Multiline(MAX_NOTE_CHARS),
    ),
    ("AmendRequest", "content", Text::Multiline(MAX_NOTE_CHARS)),
];

/// Characters `char::is_control` names (Unicode Cc), for patterns.
const CONTROL: &str = "\\u0000-\\u001f\\u007f-\\u009f";
/// The same but tab, line feed and carriage return.
const CONTROL_BUT_LINES: &str = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f";

fn text_schema(text: Text) -> Value {
    let non_blank = |excluded: &str| format!("^[^{excluded}]*[^\\s{excluded}][^{excluded}]*$");
    match text {
        Text::Name(max) => json!({ "pattern": non_blank(CONTROL), "maxLength": max }),
        Text::NonBlank => json!({ "pattern": non_blank("\\u0000") }),
        Text::Bounded(min, max) => json!({
            "pattern": format!(
                "^\\s*[^\\s{CONTROL}][^{CONTROL}]{{{},}}[^\\s{CONTROL}]\\s*$",
                min.saturating_sub(2)
            ),
            "maxLength": max,
        }),
        Text::Email => json!({ "format": "email", "maxLength": 254 }),
        Text::Mobile => {
            json!({ "pattern": "^(\\s*|[ ()-]*\\+[ ()-]*([0-9][ ()-]*){8,15})$" })
        }
        Text::Multiline(max) => {
            json!({ "pattern": non_blank(CONTROL_BUT_LINES), "maxLength": max })
        }
    }
}

/// Numbers, lists and values the server bounds, by schema and field: what to add to the
/// field's schema. `body_max_chars` is `[limits] body_max_chars`, the highest limit a practice
/// may set for clients' messages.
fn bounds(body_max_chars: usize) -> Vec<(&'static str, &'static str, Value)> {
    let (participants_lo, participants_hi) = MAX_PARTICIPANTS_RANGE;
    let (years_lo, years_hi) = RETENTION_YEARS_RANGE;
    vec![
        (
            "SettingsRequest",
            "client_message_max_chars",
            json!({"minimum": 10, "maximum": body_max_chars}),
        ),
        (
            "SettingsRequest",
            "conversation_max_participants",
            json!({"minimum": participants_lo, "maximum": participants_hi}),
        ),
        (
            "SettingsRequest",
            "retention_years",
            json!({"minimum": years_lo, "maximum": years_hi}),
        ),
        (
            "AutoresponderBody",
            "periods",
            json!({"minItems": 1, "maxItems": 20}),
        ),
        (
            "BulkRequest",
            "thread_ids",
            json!({"minItems": 1, "maxItems": MAX_BULK}),
        ),
        (
            "ShareRequest",
            "people",
            json!({
                "minItems": 1,
                "maxItems": 50,
                "items": {"type": "string", "pattern": format!("^(user:)?{PERSON_ID}$")},
            }),
        ),
        (
            "FolderRequest",
            "name",
            json!({"not": reserved_folder_names()}),
        ),
        ("SearchRequest", "cursor", cursor_schema()),
    ]
}

fn declare_bounds(schemas: &mut Map<String, Value>, body_max_chars: usize) {
    for (schema, field, extra) in bounds(body_max_chars) {
        let property = schemas
            .get_mut(schema)
            .and_then(|s| s.pointer_mut(&format!("/properties/{field}")))
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("document: {schema}.{field} is not in the document"));
        if let Value::Object(extra) = extra {
            property.extend(extra);
        }
    }
}

/// A person's id as `PersonId::is_well_formed` reads it: 26 characters of lower-case
/// base32 (DNSSEC alphabet) whose last one carries no trailing bits.
const PERSON_ID: &str = "[0-9a-v]{25}[048cgkos]";

/// A cursor as the server writes it: base64url without padding, at most
/// `cursor::MAX_LEN` characters.
fn cursor_schema() -> Value {
    json!({"pattern": "^[A-Za-z0-9_-]+$", "maxLength": crate::service::cursor::MAX_LEN})
}

/// Names a folder cannot take: a built-in folder's (any case, once trimmed) or a team's.
fn reserved_folder_names() -> Value {
    json!({ "pattern": format!("^\\s*((?i:{})\\s*$|(?i:team):)", RESERVED.join("|")) })
}

/// Response fields the server writes as `null` when they have no value.
const NULLABLE_IN_RESPONSES: &[(&str, &str)] = &[("SearchPage", "next_cursor")];

fn declare_nullable_responses(schemas: &mut Map<String, Value>) {
    for (schema, field) in NULLABLE_IN_RESPONSES {
        let property = schemas
            .get_mut(*schema)
            .and_then(|s| s.pointer_mut(&format!("/properties/{field}")))
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("document: {schema}.{field} is not in the document"));
        property.insert("nullable".into(), Value::Bool(true));
    }
}

fn declare_text_fields(schemas: &mut Map<String, Value>) {
    for (schema, field, text) in TEXT_FIELDS {
        let property = schemas
            .get_mut(*schema)
            .and_then(|s| s.pointer_mut(&format!("/properties/{field}")))
            .and_then(Value::as_object_mut);
        match property {
            Some(property) => {
                if let Value::Object(extra) = text_schema(*text) {
                    property.extend(extra);
                }
            }
            None => panic!("document: {schema}.{field} is not in the document"),
        }
    }
}

/// poem-openapi's document, finished.
pub fn finish(spec: &str, body_max_chars: usize) -> String {
    let mut doc: Value = serde_json::from_str(spec).expect("poem-openapi writes JSON");
    plain_references(&mut doc);
    let request_schemas = request_schemas(&doc);
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        declare_text_fields(schemas);
        declare_bounds(schemas, body_max_chars);
        declare_nullable_responses(schemas);
        for name in &request_schemas {
            if let Some(schema) = schemas.get_mut(name) {
                close_object(schema);
            }
        }
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut() {
                if let Some(body) = operation.pointer_mut("/requestBody/content") {
                    for media in body.as_object_mut().into_iter().flatten() {
                        if let Some(schema) = media.1.get_mut("schema") {
                            close_object(schema);
                        }
                    }
                    declare_unsupported_media_type(operation);
                }
                if path == "/audit/export" {
                    declare_export_types(operation);
                }
                if path == "/attachments" {
                    if let Some(file) = operation.pointer_mut(
                        "/requestBody/content/multipart~1form-data/schema/properties/file",
                    ) {
                        file["minItems"] = json!(1);
                        // An empty file is refused (`attachment_empty`).
                        file["items"]["minLength"] = json!(1);
                    }
                }
                if path == "/attachments/{id}" {
                    // A file is served as the type it was stored with.
                    if let Some(content) = operation
                        .pointer_mut("/responses/200/content")
                        .and_then(Value::as_object_mut)
                    {
                        let schema = json!({"type": "string", "format": "binary"});
                        content.clear();
                        content.insert("*/*".into(), json!({ "schema": schema }));
                    }
                }
                for response in operation
                    .get_mut("responses")
                    .and_then(Value::as_object_mut)
                    .into_iter()
                    .flatten()
                {
                    if let Some(stream) = response.1.pointer_mut("/content/text~1event-stream") {
                        describe_events(stream);
                    }
                }
                for parameter in operation
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    constrain_parameter(path, parameter);
                }
            }
        }
    }
    declare_links(&mut doc);
    serde_json::to_string_pretty(&doc).expect("a JSON value serialises")
}

/// What a creating operation's answer links to: (path, method, status, where the new
/// id is in the answer, the paths that take it as `{id}`).
const LINKS: &[(&str, &str, &str, &str, &str)] = &[
    ("/threads", "post", "201", "/id", "/threads/{id}"),
    (
        "/threads/{id}/messages",
        "post",
        "201",
        "/id",
        "/messages/{id}",
    ),
    (
        "/attachments",
        "post",
        "201",
        "/attachments/0/id",
        "/attachments/{id}",
    ),
    ("/drafts", "post", "201", "/id", "/drafts/{id}"),
    ("/people", "post", "201", "/id", "/people/{id}"),
];

/// Paths under a linked prefix that are not there for everyone who may make the object,
/// so that its id does not lead there: a chart exists for clients only, and front
/// office, billers and agents get 404 on it (DESIGN.md §2 Quick note); a client who
/// starts a thread gets 404 on its internal notes (§2 Conversations).
const NOT_LINKED: &[&str] = &["/people/{id}/chart-notes", "/threads/{id}/notes"];

/// OpenAPI links from each creating operation to every operation that takes the id it
/// made, so that clients (and schemathesis' stateful phase) can follow them.
fn declare_links(doc: &mut Value) {
    let mut targets: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for operation in item.as_object().into_iter().flatten().map(|(_, op)| op) {
            if let Some(id) = operation["operationId"].as_str() {
                targets.push((path.clone(), id.to_string()));
            }
        }
    }
    for (source, method, status, pointer, prefix) in LINKS {
        let links: Map<String, Value> = targets
            .iter()
            .filter(|(path, _)| {
                path.strip_prefix(prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                    && !NOT_LINKED.contains(&path.as_str())
            })
            .map(|(_, operation_id)| {
                (
                    operation_id.clone(),
                    json!({
                        "operationId": operation_id,
                        "parameters": { "path.id": format!("$response.body#{pointer}") },
                    }),
                )
            })
            .collect();
        let response = doc
            .get_mut("paths")
            .and_then(|paths| paths.get_mut(*source))
            .and_then(|item| item.get_mut(*method))
            .and_then(|operation| operation.pointer_mut(&format!("/responses/{status}")))
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("document: no {status} answer to {method} {source}"));
        response.insert("links".into(), Value::Object(links));
    }
}

/// Replaces `{"allOf": [{"$ref": X}, {"description": …}], …}` by `{"$ref": X}`, anywhere.
fn plain_references(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let reference = map
                .get("allOf")
                .and_then(Value::as_array)
                .and_then(|parts| single_reference(parts));
            if let Some(reference) = reference {
                *map = Map::from_iter([("$ref".to_string(), Value::String(reference))]);
                return;
            }
            for v in map.values_mut() {
                plain_references(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(plain_references),
        _ => {}
    }
}

/// The reference of an `allOf` that is one reference and annotations only.
fn single_reference(parts: &[Value]) -> Option<String> {
    let mut reference = None;
    for part in parts {
        let part = part.as_object()?;
        if let Some(r) = part.get("$ref").and_then(Value::as_str) {
            if reference.is_some() || part.len() != 1 {
                return None;
            }
            reference = Some(r.to_string());
        } else if !part
            .keys()
            .all(|k| matches!(k.as_str(), "description" | "title"))
        {
            return None;
        }
    }
    reference
}

/// The names of the component schemas a request body holds, directly or nested.
fn request_schemas(doc: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut todo = Vec::new();
    for item in doc["paths"].as_object().into_iter().flatten() {
        for operation in item.1.as_object().into_iter().flatten() {
            if let Some(content) = operation.1.pointer("/requestBody/content") {
                collect_references(content, &mut todo);
            }
        }
    }
    while let Some(name) = todo.pop() {
        if names.insert(name.clone()) {
            if let Some(schema) = doc.pointer(&format!("/components/schemas/{name}")) {
                collect_references(schema, &mut todo);
            }
        }
    }
    names
}

fn collect_references(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                if let Some(name) = r.strip_prefix("#/components/schemas/") {
                    into.push(name.to_string());
                }
            }
            map.values().for_each(|v| collect_references(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, into)),
        _ => {}
    }
}

/// An object of a request: no field it does not declare, and no NUL in its strings (the
/// server refuses both, naming the field). Nested inline objects alike.
fn close_object(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    match map.get("type").and_then(Value::as_str) {
        // A map: its keys and values, like any other strings.
        Some("object")
            if map
                .get("additionalProperties")
                .is_some_and(Value::is_object) =>
        {
            map.entry("propertyNames")
                .or_insert_with(|| json!({ "pattern": NO_NUL }));
            if let Some(values) = map.get_mut("additionalProperties") {
                close_object(values);
            }
        }
        Some("object") if map.contains_key("properties") => {
            map.entry("additionalProperties")
                .or_insert(Value::Bool(false));
            // An optional field may also be null (serde reads it as absent, or as "clear"
            // where the field says so); a list may not.
            let required: BTreeSet<String> = map
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            for (name, property) in map
                .get_mut("properties")
                .and_then(Value::as_object_mut)
                .into_iter()
                .flatten()
            {
                if !required.contains(name)
                    && property.get("type").and_then(Value::as_str) != Some("array")
                {
                    // (A reference cannot be made nullable in OpenAPI 3.0 without the
                    // `allOf` wrapper generators drop; those stay as they are.)
                    if let Some(property) =
                        property.as_object_mut().filter(|p| !p.contains_key("$ref"))
                    {
                        property.insert("nullable".into(), Value::Bool(true));
                    }
                }
            }
            for property in map
                .get_mut("properties")
                .and_then(Value::as_object_mut)
                .into_iter()
                .flatten()
            {
                close_object(property.1);
            }
        }
        Some("array") => {
            if let Some(items) = map.get_mut("items") {
                close_object(items);
            }
        }
        Some("integer")
            if map
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| f.starts_with("uint")) =>
        {
            map.entry("minimum").or_insert(json!(0));
        }
        Some("string")
            if !["pattern", "enum", "format"]
                .iter()
                .any(|k| map.contains_key(*k)) =>
        {
            map.insert("pattern".into(), Value::String(NO_NUL.into()));
        }
        _ => {}
    }
}

fn declare_unsupported_media_type(operation: &mut Value) {
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let problem = responses
        .get("400")
        .and_then(|r| r.get("content"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    responses.entry("415").or_insert_with(|| {
        json!({
            "description": "The body is not of the media type this operation takes.",
            "content": problem,
        })
    });
}

/// The audit export is JSON lines or CSV, as `format` asks, not any octet stream.
fn declare_export_types(operation: &mut Value) {
    if let Some(content) = operation
        .pointer_mut("/responses/200/content")
        .and_then(Value::as_object_mut)
    {
        let schema = json!({"type": "string"});
        content.clear();
        content.insert(
            "application/x-ndjson".into(),
            json!({ "schema": schema.clone() }),
        );
        content.insert("text/csv".into(), json!({ "schema": schema }));
    }
}

/// `{"schema": {"type": "array", "items": E}}` of a stream becomes one event's schema:
/// `data` is JSON of schema E (`id: STATE`, `event: state`, `data: {…}`).
fn describe_events(stream: &mut Value) {
    let Some(items) = stream.pointer("/schema/items").cloned() else {
        return;
    };
    stream["schema"] = json!({
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "enum": ["state"]},
            "id": {"type": "string"},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": items,
            },
        },
    });
}

/// Declares what the handlers check of a parameter beyond its type.
fn constrain_parameter(path: &str, parameter: &mut Value) {
    let name = parameter["name"].as_str().unwrap_or_default().to_string();
    let location = parameter["in"].as_str().unwrap_or_default().to_string();
    let constraint = match (location.as_str(), path, name.as_str()) {
        ("path", _, "emoji") => json!({ "enum": REACTIONS }),
        ("query", "/audit/export", "format") => json!({ "enum": ["jsonl", "csv"] }),
        ("query", "/audit/export", "from" | "to") => json!({ "format": "date-time" }),
        ("query", "/chart-notes/{id}", "format") => json!({ "enum": ["markdown", "fhir", "json"] }),
        ("query", "/threads/{id}/export", "format") => json!({ "enum": ["csv"] }),
        ("query", "/threads", "assignee") => json!({ "enum": ["mine", "unassigned"] }),
        ("query", "/changes", "limit") => {
            json!({ "minimum": 1, "maximum": crate::service::changes::MAX_LIMIT })
        }
        ("query", _, "cursor") => cursor_schema(),
        // `audit_service::parse_anchor`: SEQ (from 1) and a SHA-256 in hex, trimmed.
        ("query", "/audit/verify", "anchor") => json!({
            "pattern": "^\\s*\\+?0*[1-9][0-9]{0,17}\\s*:\\s*[0-9a-fA-F]{64}\\s*$"
        }),
        // Any other string: the server refuses NUL anywhere in the address.
        _ if parameter.pointer("/schema/type").and_then(Value::as_str) == Some("string")
            && !["pattern", "enum", "format"]
                .iter()
                .any(|k| parameter["schema"].get(*k).is_some()) =>
        {
            json!({ "pattern": NO_NUL })
        }
        _ => return,
    };
    if let (Some(schema), Value::Object(extra)) = (
        parameter.get_mut("schema").and_then(Value::as_object_mut),
        constraint,
    ) {
        schema.extend(extra);
    }
}

/// Which methods each path of the API takes, from the finished document.
pub struct Methods {
    paths: Vec<(Vec<Segment>, Vec<String>)>,
}

enum Segment {
    Literal(String),
    Parameter,
}

impl Methods {
    pub fn of(document: &str) -> Methods {
        let doc: Value = serde_json::from_str(document).expect("the document is JSON");
        let paths = doc["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(path, item)| {
                let segments = path
                    .trim_matches('/')
                    .split('/')
                    .map(|s| {
                        if s.starts_with('{') {
                            Segment::Parameter
                        } else {
                            Segment::Literal(s.to_string())
                        }
                    })
                    .collect();
                let mut methods: Vec<String> = item
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(m, _)| m.to_ascii_uppercase())
                    .collect();
                if methods.iter().any(|m| m == "GET") {
                    methods.push("HEAD".into());
                }
                methods.sort();
                (segments, methods)
            })
            .collect();
        Methods { paths }
    }

    /// The `Allow` value for `path` (relative to the API's base), if it is one of its
    /// paths. A literal segment wins over a parameter, as in the router.
    pub fn allow(&self, path: &str) -> Option<String> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.paths
            .iter()
            .filter(|(segments, _)| {
                segments.len() == parts.len()
                    && segments.iter().zip(&parts).all(|(s, p)| match s {
                        Segment::Literal(l) => l == p,
                        Segment::Parameter => !p.is_empty(),
                    })
            })
            .max_by_key(|(segments, _)| {
                segments
                    .iter()
                    .filter(|s| matches!(s, Segment::Literal(_)))
                    .count()
            })
            .map(|(_, methods)| methods.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_described_reference_becomes_the_plain_reference() {
        let mut v = json!({"properties": {"role": {
            "description": "d",
            "allOf": [{"$ref": "#/components/schemas/RoleName"}, {"description": "d"}]
        }}});
        plain_references(&mut v);
        assert_eq!(
            v,
            json!({"properties": {"role": {"$ref": "#/components/schemas/RoleName"}}})
        );
        // An allOf that merges two schemas is left alone.
        let mut merged = json!({"allOf": [{"$ref": "#/a"}, {"$ref": "#/b"}]});
        plain_references(&mut merged);
        assert!(merged.get("allOf").is_some());
    }

    #[test]
    fn allow_names_the_methods_of_the_matching_path() {
        let methods = Methods::of(
            &json!({"paths": {
                "/threads": {"get": {}, "post": {}},
                "/threads/{id}": {"get": {}, "patch": {}},
                "/threads/archive": {"post": {}}
            }})
            .to_string(),
        );
        assert_eq!(
            methods.allow("/threads").as_deref(),
            Some("GET, HEAD, POST")
        );
        assert_eq!(
            methods.allow("/threads/abc").as_deref(),
            Some("GET, HEAD, PATCH")
        );
        assert_eq!(methods.allow("/threads/archive").as_deref(), Some("POST"));
        assert_eq!(methods.allow("/nothing"), None);
        assert_eq!(methods.allow("/threads/a/b"), None);
    }
}
