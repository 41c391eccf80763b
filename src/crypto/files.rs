//! Attachment bytes, sealed in chunks of 64 KiB with the STREAM construction
//! (as `aead::stream::StreamBE32` over AES-256-GCM, with a key of the file's own): each
//! chunk is authenticated with its position and whether it is the last, so a file cut
//! short, with chunks swapped or taken from another file is refused, and no file is
//! ever whole in memory. (AES-GCM rather than XChaCha20-Poly1305 here for speed: the
//! processor does AES; the file's own key, drawn from a random salt with HKDF, keeps
//! AES-GCM's short nonces from ever repeating under one key.)
//!
//! A sealed file: `CFE1`, the data key's generation (u32 BE), the 32-byte salt, the
//! 7-byte nonce prefix, then each chunk's ciphertext and tag. There are
//! `size / 64 KiB + 1` chunks: all full but the last, which holds the rest (maybe
//! nothing). Chunk `i`'s nonce is the prefix, `i` (u32 BE) and a byte saying whether it
//! is the last (1) or not (0); the header is its associated data.
//!
//! The AES-GCM is ring's, whose assembly encrypts and authenticates in one pass, several
//! times as fast on this kind of processor as the portable `aes-gcm` crate (a test checks
//! that the two write the same bytes, so files sealed before the change still open).

use hkdf::Hkdf;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use sha2::Sha256;

use super::DataKey;

/// Plain bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Bytes a chunk's tag adds.
pub const TAG: usize = 16;
const MAGIC: &[u8; 4] = b"CFE1";
const SALT: usize = 32;
const PREFIX: usize = 7;
pub const HEADER_LEN: usize = 4 + 4 + SALT + PREFIX;

/// How long a sealed file of `plain` bytes is.
pub fn sealed_len(plain: u64) -> u64 {
    HEADER_LEN as u64 + plain + TAG as u64 * chunks(plain)
}

/// How many chunks a file of `plain` bytes is sealed in.
pub fn chunks(plain: u64) -> u64 {
    plain / CHUNK as u64 + 1
}

/// The length of sealed chunk `index` (0-based) of a file of `plain` bytes.
pub fn chunk_len(plain: u64, index: u64) -> usize {
    if index + 1 < chunks(plain) {
        CHUNK + TAG
    } else {
        (plain % CHUNK as u64) as usize + TAG
    }
}

/// The generation a sealed file's header names, if it is one.
pub fn generation_of(header: &[u8]) -> Option<u32> {
    if header.len() < HEADER_LEN || &header[..4] != MAGIC {
        return None;
    }
    Some(u32::from_be_bytes(header[4..8].try_into().ok()?))
}

/// The stream of one file: its own key, from the data key's file key and the header's
/// salt, and the header's nonce prefix.
struct Stream {
    key: LessSafeKey,
    prefix: [u8; PREFIX],
}

impl Stream {
    fn of(key: &DataKey, header: &[u8]) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(&header[8..8 + SALT]), &key.files);
        let mut file_key = [0u8; 32];
        hkdf.expand(b"confide file v1", &mut file_key)
            .expect("32 bytes");
        Stream {
            key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &file_key).expect("a 32-byte key")),
            prefix: header[8 + SALT..HEADER_LEN].try_into().expect("7 bytes"),
        }
    }

    fn nonce(&self, position: u32, last: bool) -> Nonce {
        let mut nonce = [0u8; 12];
        nonce[..PREFIX].copy_from_slice(&self.prefix);
        nonce[PREFIX..PREFIX + 4].copy_from_slice(&position.to_be_bytes());
        nonce[11] = u8::from(last);
        Nonce::assume_unique_for_key(nonce)
    }
}

/// Seals a file as it arrives: feed it plain bytes, write out what it returns.
pub struct FileSealer {
    stream: Stream,
    header: [u8; HEADER_LEN],
    position: u32,
    pending: Vec<u8>,
}

impl FileSealer {
    pub fn new(key: &DataKey) -> Self {
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(MAGIC);
        header[4..8].copy_from_slice(&key.generation().to_be_bytes());
        header[8..8 + SALT].copy_from_slice(&rand::random::<[u8; SALT]>());
        header[8 + SALT..].copy_from_slice(&rand::random::<[u8; PREFIX]>());
        FileSealer {
            stream: Stream::of(key, &header),
            header,
            position: 0,
            pending: Vec::with_capacity(CHUNK + TAG),
        }
    }

    /// What the sealed file starts with.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// Takes plain bytes; appends to `out` the chunks now known not to be the last. A full
    /// chunk never is (a file of whole chunks ends with an empty one), so it is sealed at
    /// once, straight from `data` when it lies there whole.
    pub fn update(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while !data.is_empty() {
            if self.pending.is_empty() && data.len() >= CHUNK {
                let (whole, rest) = data.split_at(CHUNK);
                self.seal_into(whole, false, out);
                data = rest;
                continue;
            }
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == CHUNK {
                let pending = std::mem::take(&mut self.pending);
                self.seal_into(&pending, false, out);
                self.pending = pending;
                self.pending.clear();
            }
        }
    }

    /// Appends the last chunk to `out` (an empty one after a full chunk).
    pub fn finish(mut self, out: &mut Vec<u8>) {
        let pending = std::mem::take(&mut self.pending);
        self.seal_into(&pending, true, out);
    }

    /// Seals `plain` as the next chunk straight into `out`.
    fn seal_into(&mut self, plain: &[u8], last: bool, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(plain);
        let nonce = self.stream.nonce(self.position, last);
        let tag = self
            .stream
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(&self.header), &mut out[start..])
            .expect("a 64 KiB chunk always seals");
        out.extend_from_slice(tag.as_ref());
        self.position += 1;
    }
}

/// Opens a sealed file chunk by chunk, in order.
pub struct FileOpener {
    stream: Stream,
    header: [u8; HEADER_LEN],
    position: u32,
}

impl FileOpener {
    /// `key` must be the generation the header names.
    pub fn new(key: &DataKey, header: &[u8]) -> Result<Self, &'static str> {
        if generation_of(header) != Some(key.generation()) {
            return Err("not a sealed file of this key");
        }
        Ok(FileOpener {
            stream: Stream::of(key, header),
            header: header[..HEADER_LEN].try_into().expect("checked length"),
            position: 0,
        })
    }

    /// Opens the next chunk in place (its tag is dropped).
    pub fn open_next(&mut self, chunk: &mut Vec<u8>, last: bool) -> Result<(), &'static str> {
        let nonce = self.stream.nonce(self.position, last);
        let plain = self
            .stream
            .key
            .open_in_place(nonce, Aad::from(&self.header), chunk)
            .map_err(|_| "a chunk was changed, moved or cut short")?
            .len();
        chunk.truncate(plain);
        self.position += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DataKeyBytes;

    fn seal(key: &DataKey, plain: &[u8], pieces: usize) -> Vec<u8> {
        let mut sealer = FileSealer::new(key);
        let mut out = sealer.header().to_vec();
        for piece in plain.chunks(pieces.max(1)) {
            sealer.update(piece, &mut out);
        }
        sealer.finish(&mut out);
        out
    }

    fn open(key: &DataKey, sealed: &[u8], plain_len: u64) -> Result<Vec<u8>, &'static str> {
        let mut opener = FileOpener::new(key, sealed)?;
        let mut at = HEADER_LEN;
        let mut out = Vec::new();
        for i in 0..chunks(plain_len) {
            let len = chunk_len(plain_len, i);
            let mut chunk = sealed.get(at..at + len).ok_or("cut short")?.to_vec();
            opener.open_next(&mut chunk, i + 1 == chunks(plain_len))?;
            out.extend(chunk);
            at += len;
        }
        if at != sealed.len() {
            return Err("trailing bytes");
        }
        Ok(out)
    }

    #[test]
    fn files_of_every_length_round_trip_in_any_pieces() {
        let key = DataKey::new(3, &DataKeyBytes([4; 32]));
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            for pieces in [1000, CHUNK, 100_000] {
                let sealed = seal(&key, &plain, pieces);
                assert_eq!(sealed.len() as u64, sealed_len(len as u64));
                assert_eq!(generation_of(&sealed), Some(3));
                assert_eq!(open(&key, &sealed, len as u64).unwrap(), plain, "{len}");
            }
        }
    }

    /// The files written before ring sealed them (the `aead` crate's STREAM over the
    /// `aes-gcm` crate) and those written now are the same bytes, so both open.
    #[test]
    fn files_are_sealed_as_the_aead_crates_stream_seals_them() {
        use aes_gcm::{Aes256Gcm, KeyInit};
        use chacha20poly1305::aead::generic_array::GenericArray;
        use chacha20poly1305::aead::stream::{NewStream, StreamBE32, StreamPrimitive};

        let key = DataKey::new(2, &DataKeyBytes([9; 32]));
        let plain: Vec<u8> = (0..2 * CHUNK + 5).map(|i| (i % 249) as u8).collect();
        let sealed = seal(&key, &plain, 7000);
        let header = &sealed[..HEADER_LEN];
        let hkdf = Hkdf::<Sha256>::new(Some(&header[8..8 + SALT]), &key.files);
        let mut file_key = [0u8; 32];
        hkdf.expand(b"confide file v1", &mut file_key).unwrap();
        let stream = StreamBE32::from_aead(
            Aes256Gcm::new(GenericArray::from_slice(&file_key)),
            GenericArray::from_slice(&header[8 + SALT..HEADER_LEN]),
        );
        let mut expected = header.to_vec();
        let pieces: Vec<&[u8]> = plain.chunks(CHUNK).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let mut chunk = piece.to_vec();
            let last = i + 1 == pieces.len();
            stream
                .encrypt_in_place(i as u32, last, header, &mut chunk)
                .unwrap();
            expected.extend(chunk);
        }
        assert_eq!(sealed, expected);
    }

    #[test]
    fn a_swapped_cut_or_foreign_chunk_is_refused() {
        let key = DataKey::new(1, &DataKeyBytes([4; 32]));
        let plain = vec![7u8; 3 * CHUNK + 10];
        let len = plain.len() as u64;
        let sealed = seal(&key, &plain, CHUNK);
        // Two chunks swapped.
        let mut swapped = sealed.clone();
        let (a, b) = (HEADER_LEN, HEADER_LEN + CHUNK + TAG);
        let first = sealed[a..b].to_vec();
        let second = sealed[b..b + CHUNK + TAG].to_vec();
        swapped[a..b].copy_from_slice(&second);
        swapped[b..b + CHUNK + TAG].copy_from_slice(&first);
        assert!(open(&key, &swapped, len).is_err());
        // Cut after a whole chunk: the chunk before is not the last one.
        let cut = &sealed[..HEADER_LEN + CHUNK + TAG];
        assert!(open(&key, cut, CHUNK as u64).is_err());
        // A chunk from another file of the same key.
        let other = seal(&key, &plain, CHUNK);
        let mut mixed = sealed.clone();
        mixed[a..b].copy_from_slice(&other[a..b]);
        assert!(open(&key, &mixed, len).is_err());
        // Another key.
        let stranger = DataKey::new(1, &DataKeyBytes([5; 32]));
        assert!(open(&stranger, &sealed, len).is_err());
        assert_eq!(open(&key, &sealed, len).unwrap(), plain);
    }
}
