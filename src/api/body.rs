//! `JsonBody<T>`: a JSON request body, always an object, parsed with serde, so that every
//! refusal names the field at fault (`serde_path_to_error`). Its size is bounded in front of every route
//! (`web::request_limits`). Its schema is `T`'s.

use poem::{Request, RequestBody};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::de::DeserializeOwned;

use crate::domain::Code;
use crate::error::AppError;

pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(mime)
            if mime.type_() == "application"
                && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(_request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        // Bounded in size (and time) by `web::request_limits`, in front of every route.
        let bytes = body.take()?.into_bytes().await?;
        parse(&bytes).map(JsonBody).map_err(Into::into)
    }
}

/// Whether JSON text holds an escaped NUL (`\u0000`): databases refuse it in text, and no
/// field of this API has a use for it.
fn has_escaped_nul(bytes: &[u8]) -> bool {
    let needle = b"u0000";
    bytes.windows(needle.len()).enumerate().any(|(i, w)| {
        w.eq_ignore_ascii_case(needle)
            && i > 0
            && bytes[..i].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 1
    })
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    if has_escaped_nul(bytes) {
        return Err(AppError::new(
            Code::InvalidJson,
            "The body must not contain NUL characters (\\u0000).",
        ));
    }
    if bytes.is_empty() {
        return Err(AppError::new(
            Code::InvalidJson,
            "The request needs a JSON body.",
        ));
    }
    // Every body of this API is an object. serde would also take a struct from an array of
    // its fields in order (`[null]`), which no document declares.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(AppError::new(
            Code::InvalidJson,
            "The body must be a JSON object ({ … }).",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return AppError::new(
                Code::InvalidJson,
                format!("The body is not valid JSON: {inner}"),
            );
        }
        let message = inner.to_string();
        // serde names a missing or unknown field in its message; the path is where it was.
        let field = field_from_message(&message).unwrap_or_else(|| path.clone());
        let field = if path != "." && !field.contains('.') && field != path {
            if message.starts_with("missing field") || message.starts_with("unknown field") {
                format!("{path}.{field}")
            } else {
                path
            }
        } else {
            field
        };
        let detail = match message.find(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        AppError::new(Code::InvalidField, format!("{field}: {detail}")).with_field(field)
    })
}

fn field_from_message(message: &str) -> Option<String> {
    for prefix in ["missing field `", "unknown field `"] {
        if let Some(rest) = message.strip_prefix(prefix) {
            return rest.split('`').next().map(str::to_string);
        }
    }
    None
}

poem_openapi::impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        email: String,
        age: Option<u32>,
    }

    #[test]
    fn missing_field_is_named() {
        let err = parse::<Sample>(br#"{"age": 3}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("email"));
        assert_eq!(err.code, Code::InvalidField);
    }

    #[test]
    fn wrong_type_is_named() {
        let err = parse::<Sample>(br#"{"email": 5}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("email"));
    }

    #[test]
    fn only_an_object_is_a_body() {
        for body in [
            &br#"["a@b.org", null]"#[..],
            b"  [null]",
            b"\"a@b.org\"",
            b"5",
            b"null",
        ] {
            let err = parse::<Sample>(body).unwrap_err();
            assert_eq!(
                err.code,
                Code::InvalidJson,
                "{:?}",
                std::str::from_utf8(body)
            );
        }
        assert!(parse::<Sample>(b" \n {\"email\": \"a@b.org\"}").is_ok());
    }

    #[test]
    fn unknown_field_is_named() {
        let err = parse::<Sample>(br#"{"email": "a@b.org", "admin": true}"#).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("admin"));
    }

    #[test]
    fn nul_characters_are_refused_but_an_escaped_backslash_is_not_one() {
        assert_eq!(
            parse::<Sample>(br#"{"email": "a\u0000@b.org"}"#)
                .unwrap_err()
                .code,
            Code::InvalidJson
        );
        assert!(parse::<Sample>(br#"{"email": "a\\u0000@b.org"}"#).is_ok());
    }

    #[test]
    fn broken_json_is_its_own_code() {
        let err = parse::<Sample>(br#"{"email": "#).unwrap_err();
        assert_eq!(err.code, Code::InvalidJson);
    }
}
