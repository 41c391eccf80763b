//! Encryption at rest, without I/O: the key-encryption key, each practice's data keys,
//! sealed values and the keyed hashes made from them. The cipher is XChaCha20-Poly1305
//! (the `chacha20poly1305` crate), sub-keys come from HKDF-SHA256 and keyed hashes from
//! HMAC-SHA256; nothing here is hand-made beyond putting those together.
//!
//! A sealed value is text (it lives in TEXT columns on both backends): base64 of
//! `[version 1][generation u32 BE][nonce 24][ciphertext and tag]`. Its associated data
//! names the field and the row (`threads.subject` of thread X), so a value copied into
//! another row or another column fails to open.

pub mod files;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use data_encoding::BASE64_NOPAD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;

/// A column whose values are sealed. Its name is part of every value's associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ThreadSubject,
    ThreadPreview,
    ThreadAnnouncement,
    MessageBody,
    MessageHtml,
    DraftSubject,
    DraftBody,
    NoteBody,
    NoteHtml,
    ChartNoteContent,
    AttachmentName,
    AttachmentDigest,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::ThreadSubject => "threads.subject",
            Field::ThreadPreview => "threads.preview",
            Field::ThreadAnnouncement => "threads.announcement",
            Field::MessageBody => "messages.body",
            Field::MessageHtml => "messages.body_html",
            Field::DraftSubject => "drafts.subject",
            Field::DraftBody => "drafts.body",
            Field::NoteBody => "thread_notes.body",
            Field::NoteHtml => "thread_notes.body_html",
            Field::ChartNoteContent => "chart_note_versions.content",
            Field::AttachmentName => "attachments.name",
            Field::AttachmentDigest => "attachments.content_sha256",
        }
    }
}

/// Why a stored value could not be opened: it was changed, moved to another row, sealed
/// with a key this server does not have, or is not sealed at all. Names the field and the
/// row, never the value.
#[derive(Debug, thiserror::Error)]
#[error("the sealed value of {field} for row {row} does not authenticate ({why})")]
pub struct Unsealable {
    pub field: &'static str,
    pub row: String,
    pub why: &'static str,
}

/// The key-encryption key: wraps the practices' data keys and nothing else. Its bytes
/// never leave this type (no Debug, no Display); its id is a keyed hash that names it.
pub struct Kek {
    cipher: XChaCha20Poly1305,
    id: String,
}

impl Kek {
    pub fn new(bytes: &[u8; 32]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(bytes).expect("any key length");
        mac.update(b"confide kek id v1");
        let id = hex::encode(&mac.finalize().into_bytes()[..8]);
        Kek {
            cipher: XChaCha20Poly1305::new(Key::from_slice(bytes)),
            id,
        }
    }

    /// Parses 64 hexadecimal digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = hex::decode(text.trim()).ok()?.try_into().ok()?;
        Some(Self::new(&bytes))
    }

    /// Names this key in the database and in `confide keys status`; says nothing of it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A practice's data key of one generation, sealed under this key.
    pub fn wrap(&self, practice_id: &str, generation: u32, key: &DataKeyBytes) -> String {
        let aad = wrap_aad(practice_id, generation);
        seal_bytes(&self.cipher, generation, &aad, &key.0)
    }

    pub fn unwrap(
        &self,
        practice_id: &str,
        generation: u32,
        wrapped: &str,
    ) -> Result<DataKeyBytes, &'static str> {
        let aad = wrap_aad(practice_id, generation);
        let (stored_generation, bytes) = open_bytes(&self.cipher, &aad, wrapped)?;
        if stored_generation != generation {
            return Err("generation differs");
        }
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| "wrong key length")?;
        Ok(DataKeyBytes(bytes))
    }
}

fn wrap_aad(practice_id: &str, generation: u32) -> Vec<u8> {
    format!("confide.v1|practice_key|{practice_id}|{generation}").into_bytes()
}

/// A data key's raw bytes, kept only long enough to wrap it or to derive its keys.
pub struct DataKeyBytes([u8; 32]);

impl DataKeyBytes {
    pub fn random() -> Self {
        DataKeyBytes(rand::random())
    }
}

/// One generation of a practice's data key, as the keys it is used through: one seals
/// values and files, one hashes search tokens, one makes file addresses.
pub struct DataKey {
    generation: u32,
    content: XChaCha20Poly1305,
    /// HMAC-SHA256 keyed and ready (its key's two blocks hashed once, not per token).
    index: Hmac<Sha256>,
    address: Hmac<Sha256>,
    /// What each file's own key is drawn from (see `files`).
    files: [u8; 32],
}

impl DataKey {
    pub fn new(generation: u32, bytes: &DataKeyBytes) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(b"confide data key v1"), &bytes.0);
        let mut content = [0u8; 32];
        let mut index = [0u8; 32];
        let mut address = [0u8; 32];
        hkdf.expand(b"content", &mut content).expect("32 bytes");
        hkdf.expand(b"index", &mut index).expect("32 bytes");
        hkdf.expand(b"address", &mut address).expect("32 bytes");
        let mut files = [0u8; 32];
        hkdf.expand(b"files", &mut files).expect("32 bytes");
        DataKey {
            generation,
            content: XChaCha20Poly1305::new(Key::from_slice(&content)),
            index: <Hmac<Sha256> as Mac>::new_from_slice(&index).expect("32 bytes"),
            address: <Hmac<Sha256> as Mac>::new_from_slice(&address).expect("32 bytes"),
            files,
        }
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }

    pub fn seal(&self, field: Field, row: &str, plain: &str) -> String {
        seal_bytes(
            &self.content,
            self.generation,
            &value_aad(field, row),
            plain.as_bytes(),
        )
    }

    /// Opens a value this generation sealed (the caller picked it by `generation_of`).
    pub fn open(&self, field: Field, row: &str, stored: &str) -> Result<String, Unsealable> {
        let fail = |why| Unsealable {
            field: field.as_str(),
            row: row.to_string(),
            why,
        };
        let (generation, bytes) =
            open_bytes(&self.content, &value_aad(field, row), stored).map_err(fail)?;
        if generation != self.generation {
            return Err(fail("generation differs"));
        }
        String::from_utf8(bytes).map_err(|_| fail("not UTF-8"))
    }

    /// A search token as the index holds it: a keyed hash, truncated to 16 bytes and
    /// written in base32 (lower case, no padding), so the index never holds the word.
    pub fn index_token(&self, token: &str) -> String {
        let mut mac = self.index.clone();
        mac.update(token.as_bytes());
        data_encoding::BASE32HEX_NOPAD
            .encode(&mac.finalize().into_bytes()[..16])
            .to_ascii_lowercase()
    }

    /// Where a file with this SHA-256 is kept for this practice: a keyed hash, so nobody
    /// learns from the store whether two practices hold the same file.
    pub fn file_address(&self, sha256_hex: &str) -> String {
        let mut mac = self.address.clone();
        mac.update(sha256_hex.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

fn value_aad(field: Field, row: &str) -> Vec<u8> {
    format!("confide.v1|{}|{row}", field.as_str()).into_bytes()
}

/// The generation a sealed value names in its header, or `None` if it is not one.
pub fn generation_of(stored: &str) -> Option<u32> {
    // The header is 29 bytes: 40 base64 characters cover it.
    let prefix = stored.get(..40)?;
    let bytes = BASE64_NOPAD.decode(prefix.as_bytes()).ok()?;
    if bytes.len() < 5 || bytes[0] != VERSION {
        return None;
    }
    Some(u32::from_be_bytes(bytes[1..5].try_into().ok()?))
}

fn seal_bytes(cipher: &XChaCha20Poly1305, generation: u32, aad: &[u8], plain: &[u8]) -> String {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let mut header = Vec::with_capacity(HEADER_LEN + plain.len() + 16);
    header.push(VERSION);
    header.extend_from_slice(&generation.to_be_bytes());
    header.extend_from_slice(&nonce);
    let mut full_aad = Vec::with_capacity(aad.len() + 5);
    full_aad.extend_from_slice(&header[..5]);
    full_aad.extend_from_slice(aad);
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &full_aad,
            },
        )
        .expect("XChaCha20-Poly1305 seals any length this server stores");
    header.extend_from_slice(&sealed);
    BASE64_NOPAD.encode(&header)
}

fn open_bytes(
    cipher: &XChaCha20Poly1305,
    aad: &[u8],
    stored: &str,
) -> Result<(u32, Vec<u8>), &'static str> {
    let bytes = BASE64_NOPAD
        .decode(stored.as_bytes())
        .map_err(|_| "not sealed")?;
    if bytes.len() < HEADER_LEN + 16 || bytes[0] != VERSION {
        return Err("not sealed");
    }
    let generation = u32::from_be_bytes(bytes[1..5].try_into().expect("4 bytes"));
    let mut full_aad = Vec::with_capacity(aad.len() + 5);
    full_aad.extend_from_slice(&bytes[..5]);
    full_aad.extend_from_slice(aad);
    let plain = cipher
        .decrypt(
            XNonce::from_slice(&bytes[5..HEADER_LEN]),
            Payload {
                msg: &bytes[HEADER_LEN..],
                aad: &full_aad,
            },
        )
        .map_err(|_| "changed, moved or sealed with another key")?;
    Ok((generation, plain))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(generation: u32, byte: u8) -> DataKey {
        DataKey::new(generation, &DataKeyBytes([byte; 32]))
    }

    #[test]
    fn a_sealed_value_opens_only_in_its_own_field_and_row() {
        let k = key(1, 7);
        let sealed = k.seal(Field::MessageBody, "m1", "ankle sprain");
        assert!(!sealed.contains("ankle"));
        assert_eq!(generation_of(&sealed), Some(1));
        assert_eq!(
            k.open(Field::MessageBody, "m1", &sealed).unwrap(),
            "ankle sprain"
        );
        assert!(k.open(Field::MessageBody, "m2", &sealed).is_err());
        assert!(k.open(Field::MessageHtml, "m1", &sealed).is_err());
        assert!(key(1, 8).open(Field::MessageBody, "m1", &sealed).is_err());
        // Two seals of one value differ (a fresh nonce each time).
        assert_ne!(sealed, k.seal(Field::MessageBody, "m1", "ankle sprain"));
    }

    #[test]
    fn a_flipped_byte_or_a_plain_value_is_refused() {
        let k = key(1, 7);
        let sealed = k.seal(Field::ThreadSubject, "t1", "results");
        let mut bytes = BASE64_NOPAD.decode(sealed.as_bytes()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let flipped = BASE64_NOPAD.encode(&bytes);
        assert!(k.open(Field::ThreadSubject, "t1", &flipped).is_err());
        let err = k.open(Field::ThreadSubject, "t1", "results").unwrap_err();
        assert_eq!(err.why, "not sealed");
        // The header's generation is authenticated too.
        bytes[last] ^= 1;
        bytes[4] ^= 1;
        let regenerated = BASE64_NOPAD.encode(&bytes);
        assert!(k.open(Field::ThreadSubject, "t1", &regenerated).is_err());
    }

    #[test]
    fn a_wrapped_key_unwraps_only_for_its_practice_generation_and_kek() {
        let kek = Kek::new(&[1; 32]);
        let data = DataKeyBytes([9; 32]);
        let wrapped = kek.wrap("p1", 1, &data);
        assert_eq!(kek.unwrap("p1", 1, &wrapped).unwrap().0, [9; 32]);
        assert!(kek.unwrap("p2", 1, &wrapped).is_err());
        assert!(kek.unwrap("p1", 2, &wrapped).is_err());
        assert!(Kek::new(&[2; 32]).unwrap("p1", 1, &wrapped).is_err());
        assert_ne!(Kek::new(&[1; 32]).id(), Kek::new(&[2; 32]).id());
        assert!(Kek::from_hex("zz").is_none());
        assert!(Kek::from_hex(&"ab".repeat(32)).is_some());
    }

    #[test]
    fn keyed_hashes_differ_between_practices_and_repeat_within_one() {
        let (a, b) = (key(1, 1), key(1, 2));
        assert_eq!(a.index_token("knee"), a.index_token("knee"));
        assert_ne!(a.index_token("knee"), b.index_token("knee"));
        assert_ne!(a.index_token("knee"), a.index_token("knees"));
        assert_eq!(a.index_token("knee").len(), 26);
        assert_ne!(a.file_address("00"), b.file_address("00"));
    }
}
