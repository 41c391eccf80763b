//! Attachments without I/O: which kind a file is (decided by its bytes, never by its name
//! or declared type), cleaning a file name for display, and the download header.

use std::fmt;

/// A kind of file the allow-list can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pdf,
    Doc,
    Docx,
    Txt,
    Rtf,
    Csv,
    Jpeg,
    Png,
    Gif,
    Bmp,
    Heic,
    /// MPEG-4 audio (an iPhone voice memo).
    M4a,
    /// Raw AAC in ADTS frames.
    Aac,
    Mp3,
    /// Ogg: Opus (WhatsApp-style voice notes) or Vorbis.
    Ogg,
    /// WebM audio, as browsers record it.
    Webm,
    Wav,
}

impl Kind {
    pub const ALL: [Kind; 17] = [
        Kind::Pdf,
        Kind::Doc,
        Kind::Docx,
        Kind::Txt,
        Kind::Rtf,
        Kind::Csv,
        Kind::Jpeg,
        Kind::Png,
        Kind::Gif,
        Kind::Bmp,
        Kind::Heic,
        Kind::M4a,
        Kind::Aac,
        Kind::Mp3,
        Kind::Ogg,
        Kind::Webm,
        Kind::Wav,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pdf => "pdf",
            Kind::Doc => "doc",
            Kind::Docx => "docx",
            Kind::Txt => "txt",
            Kind::Rtf => "rtf",
            Kind::Csv => "csv",
            Kind::Jpeg => "jpeg",
            Kind::Png => "png",
            Kind::Gif => "gif",
            Kind::Bmp => "bmp",
            Kind::Heic => "heic",
            Kind::M4a => "m4a",
            Kind::Aac => "aac",
            Kind::Mp3 => "mp3",
            Kind::Ogg => "ogg",
            Kind::Webm => "webm",
            Kind::Wav => "wav",
        }
    }

    /// Whether the kind is audio (a voice note).
    pub fn is_audio(self) -> bool {
        matches!(
            self,
            Kind::M4a | Kind::Aac | Kind::Mp3 | Kind::Ogg | Kind::Webm | Kind::Wav
        )
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The content type downloads are served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Pdf => "application/pdf",
            Kind::Doc => "application/msword",
            Kind::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Kind::Txt => "text/plain; charset=utf-8",
            Kind::Rtf => "application/rtf",
            Kind::Csv => "text/csv; charset=utf-8",
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Gif => "image/gif",
            Kind::Bmp => "image/bmp",
            Kind::Heic => "image/heic",
            Kind::M4a => "audio/mp4",
            Kind::Aac => "audio/aac",
            Kind::Mp3 => "audio/mpeg",
            Kind::Ogg => "audio/ogg",
            Kind::Webm => "audio/webm",
            Kind::Wav => "audio/wav",
        }
    }

    /// File-name extensions of this kind; the first is the one added when a name lacks it.
    fn extensions(self) -> &'static [&'static str] {
        match self {
            Kind::Pdf => &["pdf"],
            Kind::Doc => &["doc", "dot"],
            Kind::Docx => &["docx"],
            Kind::Txt => &["txt", "text", "log", "md"],
            Kind::Rtf => &["rtf"],
            Kind::Csv => &["csv"],
            Kind::Jpeg => &["jpg", "jpeg", "jpe"],
            Kind::Png => &["png"],
            Kind::Gif => &["gif"],
            Kind::Bmp => &["bmp", "dib"],
            Kind::Heic => &["heic", "heif"],
            Kind::M4a => &["m4a", "m4b"],
            Kind::Aac => &["aac"],
            Kind::Mp3 => &["mp3"],
            Kind::Ogg => &["ogg", "opus", "oga"],
            Kind::Webm => &["webm", "weba"],
            Kind::Wav => &["wav", "wave"],
        }
    }

    fn of_extension(ext: &str) -> Option<Kind> {
        let ext = ext.to_ascii_lowercase();
        Kind::ALL
            .into_iter()
            .find(|k| k.extensions().contains(&ext.as_str()))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many leading bytes of a file [`sniff`] looks at.
pub const HEAD_BYTES: usize = 64 * 1024;

/// The root directory entry's class id of a Word 97–2003 document
/// (00020906-0000-0000-C000-000000000046, as stored on disk).
pub const WORD_CLSID: [u8; 16] = [
    0x06, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];

const CFB_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// For an OLE compound file (the container of .doc, but also of .xls, .msi installers and
/// more), where the root directory entry's class id lies in the file.
pub fn cfb_root_clsid_offset(head: &[u8]) -> Option<u64> {
    if !head.starts_with(&CFB_MAGIC) || head.len() < 0x34 {
        return None;
    }
    let shift = u16::from_le_bytes([head[0x1E], head[0x1F]]);
    if shift != 9 && shift != 12 {
        return None;
    }
    let first_dir_sector = u32::from_le_bytes([head[0x30], head[0x31], head[0x32], head[0x33]]);
    if first_dir_sector >= 0xFFFF_FFFA {
        return None;
    }
    Some(((u64::from(first_dir_sector) + 1) << shift) + 0x50)
}

/// Tracks, chunk by chunk, whether a whole file is plain text: no control characters but
/// tab, line feed, form feed and carriage return (so no NUL, no escape sequences).
#[derive(Debug, Clone, Default)]
pub struct TextCheck {
    binary: bool,
}

impl TextCheck {
    pub fn feed(&mut self, chunk: &[u8]) {
        // In blocks without an early exit inside one, so that the compiler checks a block
        // with vector instructions (a byte at a time this cost as much as hashing).
        const BLOCK: usize = 4096;
        if !self.binary {
            self.binary = chunk
                .chunks(BLOCK)
                .any(|block| block.iter().fold(false, |seen, &b| seen | not_text(b)));
        }
    }

    pub fn is_text(&self) -> bool {
        !self.binary
    }
}

/// A control character that plain text does not hold: below space other than tab, line
/// feed, form feed and carriage return, and DEL.
fn not_text(b: u8) -> bool {
    (b < 0x20) & !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C) | (b == 0x7F)
}

/// Why a file is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Empty,
    /// Its content is of no kind on the allow-list (or of no known kind at all).
    NotAllowed,
    /// Its content is one kind and its name says another.
    Mismatch {
        content: Kind,
        named: Kind,
    },
}

/// Decides what a file is from its leading bytes (`head`, at most [`HEAD_BYTES`]), whether
/// all of it is text, and for an OLE compound file its root class id. The name only
/// chooses CSV over plain text, and must not name a different kind than the content.
pub fn sniff(
    head: &[u8],
    size: u64,
    all_text: bool,
    cfb_root_clsid: Option<[u8; 16]>,
    name: &str,
    allowed: &[Kind],
) -> Result<Kind, Refusal> {
    if size == 0 {
        return Err(Refusal::Empty);
    }
    let named = extension(name).and_then(Kind::of_extension);
    let content = content_kind(head, all_text, cfb_root_clsid).ok_or(Refusal::NotAllowed)?;
    let content = match (content, named) {
        (Kind::Txt, Some(Kind::Csv)) => Kind::Csv,
        (c, _) => c,
    };
    if !allowed.contains(&content) {
        return Err(Refusal::NotAllowed);
    }
    match named {
        Some(named) if named != content && !(named == Kind::Txt && content == Kind::Csv) => {
            Err(Refusal::Mismatch { content, named })
        }
        _ => Ok(content),
    }
}

fn content_kind(head: &[u8], all_text: bool, cfb_root_clsid: Option<[u8; 16]>) -> Option<Kind> {
    if head.starts_with(b"%PDF-") {
        return Some(Kind::Pdf);
    }
    if head.starts_with(b"{\\rtf") {
        return Some(Kind::Rtf);
    }
    if head.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        return Some(Kind::Png);
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return Some(Kind::Gif);
    }
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(Kind::Jpeg);
    }
    if head.starts_with(b"BM") && head.len() >= 18 {
        let dib = u32::from_le_bytes([head[14], head[15], head[16], head[17]]);
        if matches!(dib, 12 | 40 | 52 | 56 | 64 | 108 | 124) {
            return Some(Kind::Bmp);
        }
        return None;
    }
    if infer::image::is_heif(head) {
        return Some(Kind::Heic);
    }
    if let Some(audio) = audio_kind(head) {
        return Some(audio);
    }
    if head.starts_with(b"PK\x03\x04") {
        // A Word document is a ZIP archive whose entries live under word/.
        let docx = infer::doc::is_docx(head)
            || (head.windows(17).any(|w| w == b"word/document.xml")
                && head.windows(19).any(|w| w == b"[Content_Types].xml"));
        return docx.then_some(Kind::Docx);
    }
    if head.starts_with(&CFB_MAGIC) {
        return (cfb_root_clsid == Some(WORD_CLSID)).then_some(Kind::Doc);
    }
    // Text last: every kind above has a binary signature.
    all_text.then_some(Kind::Txt)
}

/// Audio by its signature: an MPEG-4 file whose brands say audio, ADTS or MPEG audio
/// frames (or an ID3 tag), Ogg pages, a WebM (Matroska) header, a RIFF WAVE header.
fn audio_kind(head: &[u8]) -> Option<Kind> {
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let brands = &head[8..size.clamp(12, head.len())];
        let audio = brands.chunks_exact(4).any(|b| b == b"M4A " || b == b"M4B ");
        return audio.then_some(Kind::M4a);
    }
    if head.starts_with(b"OggS") {
        return Some(Kind::Ogg);
    }
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        let window = &head[..head.len().min(64)];
        return window
            .windows(4)
            .any(|w| w == b"webm")
            .then_some(Kind::Webm);
    }
    if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WAVE" {
        return Some(Kind::Wav);
    }
    if head.starts_with(b"ID3") {
        return Some(Kind::Mp3);
    }
    if head.len() >= 4 && head[0] == 0xFF {
        // ADTS (AAC): sync word, layer 00; MPEG audio: sync, any other layer.
        if head[1] & 0xF6 == 0xF0 {
            return Some(Kind::Aac);
        }
        if head[1] & 0xE0 == 0xE0 && head[1] & 0x06 != 0 {
            return Some(Kind::Mp3);
        }
    }
    None
}

fn extension(name: &str) -> Option<&str> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then_some(ext)
}

/// Longest file name kept, in characters.
const NAME_MAX_CHARS: usize = 200;

fn is_invisible_or_control(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// A file name fit for display and for a download's name: no path separators, no control,
/// invisible or direction-changing characters, no leading dots, at most 200 characters,
/// and ending in an extension of the file's real kind.
pub fn clean_name(raw: &str, kind: Kind) -> String {
    let mut name: String = raw
        .chars()
        .filter(|c| !is_invisible_or_control(*c))
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c => c,
        })
        .collect();
    name = name
        .trim()
        .trim_start_matches('.')
        .trim_end_matches(['.', ' '])
        .to_string();
    let has_own_ext = extension(&name).is_some_and(|ext| {
        kind.extensions()
            .contains(&ext.to_ascii_lowercase().as_str())
    });
    let suffix = if has_own_ext {
        String::new()
    } else {
        format!(".{}", kind.extensions()[0])
    };
    if name.is_empty() {
        name = "attachment".into();
    }
    let room = NAME_MAX_CHARS - suffix.chars().count();
    if name.chars().count() > room {
        // Keep the extension when shortening.
        match extension(&name).filter(|e| e.chars().count() <= 10 && suffix.is_empty()) {
            Some(ext) => {
                let ext = format!(".{ext}");
                let stem: String = name.chars().take(room - ext.chars().count()).collect();
                name = format!("{}{ext}", stem.trim_end());
            }
            None => name = name.chars().take(room).collect(),
        }
    }
    name.push_str(&suffix);
    name
}

/// `Content-Disposition: attachment` with the name as an ASCII fallback and, for any other
/// character, RFC 8187 `filename*`.
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' && c != '%' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(name, KEEP);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(head: &[u8], name: &str) -> Result<Kind, Refusal> {
        let mut t = TextCheck::default();
        t.feed(head);
        sniff(head, head.len() as u64, t.is_text(), None, name, &Kind::ALL)
    }

    #[test]
    fn content_decides_not_the_name() {
        assert_eq!(kind(b"%PDF-1.7\n...", "scan"), Ok(Kind::Pdf));
        assert_eq!(kind(b"hello, world\n", "notes"), Ok(Kind::Txt));
        assert_eq!(kind(b"a,b\n1,2\n", "table.csv"), Ok(Kind::Csv));
        assert_eq!(
            kind(b"\x89PNG\r\n\x1a\n....", "photo.jpg"),
            Err(Refusal::Mismatch {
                content: Kind::Png,
                named: Kind::Jpeg
            })
        );
    }

    #[test]
    fn voice_notes_are_recognized_by_content() {
        let m4a = b"\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00M4A mp42isom\x00\x00";
        assert_eq!(kind(m4a, "memo.m4a"), Ok(Kind::M4a));
        let video = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41";
        assert_eq!(kind(video, "clip.mp4"), Err(Refusal::NotAllowed));
        assert_eq!(kind(b"OggS\x00\x02\x00\x00", "note.opus"), Ok(Kind::Ogg));
        assert_eq!(kind(b"ID3\x04\x00\x00\x00\x00", "song.mp3"), Ok(Kind::Mp3));
        assert_eq!(kind(b"\xff\xfb\x90\x64\x00", "frames"), Ok(Kind::Mp3));
        assert_eq!(kind(b"\xff\xf1\x50\x80\x02", "raw.aac"), Ok(Kind::Aac));
        let wav = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00";
        assert_eq!(kind(wav, "voice.wav"), Ok(Kind::Wav));
        let webm = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm\x42\x87";
        assert_eq!(kind(webm, "rec.webm"), Ok(Kind::Webm));
        assert_eq!(
            kind(b"\x1a\x45\xdf\xa3\x9f\x42\x82\x88matroska", "film.mkv"),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(
            kind(b"OggS\x00\x02", "note.mp3"),
            Err(Refusal::Mismatch {
                content: Kind::Ogg,
                named: Kind::Mp3
            })
        );
        assert!(Kind::Wav.is_audio() && !Kind::Heic.is_audio());
    }

    #[test]
    fn programs_are_refused_whatever_their_name() {
        assert_eq!(
            kind(b"MZ\x90\x00\x03\x00", "invoice.pdf"),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(
            kind(b"\x7fELF\x02\x01\x01", "x.pdf"),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(
            kind(b"#!/bin/sh\nrm -rf /\n", "invoice.pdf"),
            Err(Refusal::Mismatch {
                content: Kind::Txt,
                named: Kind::Pdf
            })
        );
        assert_eq!(
            kind(b"text with \x1b[31m escape", "a.txt"),
            Err(Refusal::NotAllowed)
        );
    }

    #[test]
    fn only_word_compound_files_are_doc() {
        let mut head = CFB_MAGIC.to_vec();
        head.resize(512, 0);
        head[0x1E] = 9;
        let t = TextCheck::default();
        assert_eq!(cfb_root_clsid_offset(&head), Some(512 + 0x50));
        assert_eq!(
            sniff(
                &head,
                512,
                t.is_text(),
                Some(WORD_CLSID),
                "a.doc",
                &Kind::ALL
            ),
            Ok(Kind::Doc)
        );
        assert_eq!(
            sniff(&head, 512, false, Some([0; 16]), "setup.doc", &Kind::ALL),
            Err(Refusal::NotAllowed)
        );
    }

    #[test]
    fn the_text_check_finds_a_control_byte_anywhere_in_any_chunk() {
        for b in 0..=255u8 {
            let binary = (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C)) || b == 0x7F;
            for at in [0, 1, 4095, 4096, 9999] {
                let mut bytes = vec![b'a'; 10_000];
                bytes[at] = b;
                let mut t = TextCheck::default();
                for chunk in bytes.chunks(3000) {
                    t.feed(chunk);
                }
                assert_eq!(t.is_text(), !binary, "byte {b:#04x} at {at}");
            }
        }
    }

    #[test]
    fn the_allow_list_is_honoured() {
        let mut t = TextCheck::default();
        t.feed(b"%PDF-1.4");
        assert_eq!(
            sniff(b"%PDF-1.4", 8, false, None, "a.pdf", &[Kind::Png]),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(
            sniff(b"", 0, true, None, "a.txt", &Kind::ALL),
            Err(Refusal::Empty)
        );
    }

    #[test]
    fn hostile_names_are_made_harmless() {
        assert_eq!(
            clean_name("../../etc/passwd", Kind::Txt),
            "_.._etc_passwd.txt"
        );
        assert_eq!(
            clean_name("..\\..\\boot.ini", Kind::Txt),
            "_.._boot.ini.txt"
        );
        assert_eq!(clean_name("a\u{0}b\r\nc.pdf", Kind::Pdf), "abc.pdf");
        // A right-to-left override (U+202E) would make "reportfdp.exe" look like a PDF.
        assert_eq!(
            clean_name("report\u{202E}fdp.exe", Kind::Pdf),
            "reportfdp.exe.pdf"
        );
        assert_eq!(clean_name("...", Kind::Png), "attachment.png");
        let long = clean_name(&format!("{}.pdf", "x".repeat(1000)), Kind::Pdf);
        assert_eq!(long.chars().count(), 200);
        assert!(long.ends_with(".pdf"));
        assert_eq!(clean_name("Befund März.PDF", Kind::Pdf), "Befund März.PDF");
    }

    #[test]
    fn download_names_are_quoted_safely() {
        assert_eq!(
            content_disposition("a \"b\".pdf"),
            "attachment; filename=\"a _b_.pdf\"; filename*=UTF-8''a%20%22b%22.pdf"
        );
        assert_eq!(
            content_disposition("März.pdf"),
            "attachment; filename=\"M_rz.pdf\"; filename*=UTF-8''M%C3%A4rz.pdf"
        );
    }
}
