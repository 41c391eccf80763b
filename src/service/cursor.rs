//! One cursor for every list: opaque, versioned and tamper-evident.
//!
//! A cursor is base64url of `version · payload · tag`, where the payload is the list's
//! position as JSON and the tag an HMAC-SHA256 (first 16 bytes) over the version, the list,
//! the person it was handed to and the payload. A cursor changed by a client, handed to
//! someone else or used on another list is refused as `invalid_field` on `cursor`. The key
//! comes from the server's secret (`service::keys`), which every node shares, so that every
//! node honours every node's cursors and a restart breaks no one's paging.

use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Sha256;

use crate::error::{AppError, AppResult};

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// Longer cursors are refused before any decoding.
pub const MAX_LEN: usize = 4096;

/// The lists that page with a cursor; each signs its cursors apart from the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    People,
    Threads,
    Drafts,
    Search,
    Audit,
    /// Not a list's page but a sync state (`/changes`, the live streams).
    Changes,
}

impl List {
    fn name(self) -> &'static str {
        match self {
            List::People => "people",
            List::Threads => "threads",
            List::Drafts => "drafts",
            List::Search => "search",
            List::Audit => "audit",
            List::Changes => "changes",
        }
    }
}

/// Encodes and checks cursors with the server's key.
#[derive(Clone)]
pub struct Cursors {
    key: [u8; 32],
}

impl Cursors {
    /// Cursors under `key` (made from the server's secret).
    pub fn with_key(key: [u8; 32]) -> Cursors {
        Cursors { key }
    }

    fn tag(&self, list: List, holder: &str, payload: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        for part in [&[VERSION][..], list.name().as_bytes(), holder.as_bytes()] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// The cursor for `position` in `list`, for `holder` (the person paging) only.
    pub fn encode<T: Serialize>(&self, list: List, holder: &str, position: &T) -> String {
        let payload = serde_json::to_vec(position).expect("a position serializes");
        let mut raw = Vec::with_capacity(1 + payload.len() + TAG_LEN);
        raw.push(VERSION);
        raw.extend_from_slice(&payload);
        raw.extend_from_slice(&self.tag(list, holder, &payload));
        data_encoding::BASE64URL_NOPAD.encode(&raw)
    }

    /// Cuts `rows` (read with one more than `limit`) to `limit`, and returns the cursor of
    /// the page after it when there is one: the position of the page's last row.
    pub fn next_page<T, P: Serialize>(
        &self,
        list: List,
        holder: &str,
        rows: &mut Vec<T>,
        limit: i64,
        position: impl Fn(&T) -> P,
    ) -> Option<String> {
        let limit = usize::try_from(limit).unwrap_or(0);
        if rows.len() <= limit {
            return None;
        }
        rows.truncate(limit);
        rows.last()
            .map(|last| self.encode(list, holder, &position(last)))
    }

    /// The position a cursor of ours holds; anything else is `invalid_field` on `cursor`.
    pub fn decode<T: DeserializeOwned>(
        &self,
        list: List,
        holder: &str,
        cursor: &str,
    ) -> AppResult<T> {
        let bad = || AppError::invalid("cursor", "cursor is not one this server handed out.");
        if cursor.len() > MAX_LEN {
            return Err(bad());
        }
        let raw = data_encoding::BASE64URL_NOPAD
            .decode(cursor.as_bytes())
            .map_err(|_| bad())?;
        if raw.len() < 1 + TAG_LEN || raw[0] != VERSION {
            return Err(bad());
        }
        let (payload, tag) = raw[1..].split_at(raw.len() - 1 - TAG_LEN);
        let expected = self.tag(list, holder, payload);
        if !constant_time_eq(&expected, tag) {
            return Err(bad());
        }
        serde_json::from_slice(payload).map_err(|_| bad())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_only_where_and_for_whom_it_was_made() {
        let cursors = Cursors::with_key([7; 32]);
        let c = cursors.encode(List::Threads, "p1", &(42i64, "t9"));
        let back: (i64, String) = cursors.decode(List::Threads, "p1", &c).unwrap();
        assert_eq!(back, (42, "t9".to_string()));
        // Another list, another person, another key: refused.
        let err = |r: AppResult<(i64, String)>| r.unwrap_err().field.unwrap();
        assert_eq!(err(cursors.decode(List::Drafts, "p1", &c)), "cursor");
        assert_eq!(err(cursors.decode(List::Threads, "p2", &c)), "cursor");
        let other = Cursors::with_key([8; 32]);
        assert_eq!(err(other.decode(List::Threads, "p1", &c)), "cursor");
        // Any changed byte: refused.
        let mut raw = data_encoding::BASE64URL_NOPAD.decode(c.as_bytes()).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 1;
            let changed = data_encoding::BASE64URL_NOPAD.encode(&raw);
            assert!(cursors
                .decode::<(i64, String)>(List::Threads, "p1", &changed)
                .is_err());
            raw[i] ^= 1;
        }
        for junk in ["", "x", "!!!", &"A".repeat(2000)] {
            assert!(cursors
                .decode::<(i64, String)>(List::Threads, "p1", junk)
                .is_err());
        }
    }
}
