//! The lexer of legacy `profile.conf` files: global `key = value` lines and
//! `user NAME {` / `client NAME {` sections of such lines, with the byte offsets every
//! error message needs. It knows no key: the converter does.

use super::super::ProfileError;

#[derive(Clone, Copy, PartialEq)]
pub(super) enum SectionKind {
    User,
    Client,
}

pub(super) struct Entry<'a> {
    pub key: &'a str,
    pub key_at: usize,
    pub value: &'a str,
    pub value_at: usize,
}

pub(super) struct Section<'a> {
    pub kind: SectionKind,
    pub label: &'a str,
    pub at: usize,
    pub entries: Vec<Entry<'a>>,
}

/// A lexed file: the global entries and the sections, in order.
pub(super) struct Lexed<'a> {
    pub globals: Vec<Entry<'a>>,
    pub sections: Vec<Section<'a>>,
}

/// Splits `text` into global entries and sections; `err` builds a located error.
pub(super) fn lex<'a>(
    text: &'a str,
    err: &dyn Fn(usize, String) -> ProfileError,
) -> Result<Lexed<'a>, ProfileError> {
    let mut globals: Vec<Entry> = Vec::new();
    let mut sections: Vec<Section> = Vec::new();
    let mut open: Option<Section> = None;
    let mut offset = 0usize;
    for raw in text.split_inclusive('\n') {
        let line_start = offset;
        offset += raw.len();
        let content = raw.trim_end_matches(['\n', '\r']);
        let trimmed = content.trim_matches([' ', '\t']);
        let at = line_start + (content.len() - content.trim_start_matches([' ', '\t']).len());
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed == "}" {
            match open.take() {
                Some(section) => sections.push(section),
                None => return Err(err(at, "Invalid data: `}` without an open section".into())),
            }
            continue;
        }
        if let Some((key, value)) = trimmed.split_once('=') {
            let key = key.trim_matches([' ', '\t']);
            let value_raw = value.trim_start_matches([' ', '\t']);
            let value_at = at + (trimmed.len() - value_raw.len());
            let entry = Entry {
                key,
                key_at: at,
                value: value_raw.trim_end_matches([' ', '\t']),
                value_at,
            };
            match &mut open {
                Some(section) => section.entries.push(entry),
                None => globals.push(entry),
            }
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('{') {
            if open.is_some() {
                return Err(err(at, format!("Invalid data: nested section: {trimmed}")));
            }
            let head = head.trim_matches([' ', '\t']);
            let (word, label) = match head.split_once([' ', '\t']) {
                Some((w, l)) => (w, l.trim_matches([' ', '\t'])),
                None => (head, ""),
            };
            let kind = match word {
                "user" => SectionKind::User,
                "client" => SectionKind::Client,
                _ => return Err(err(at, format!("Unknown section: {word}"))),
            };
            open = Some(Section {
                kind,
                label,
                at,
                entries: Vec::new(),
            });
            continue;
        }
        return Err(err(at, format!("Invalid data: {trimmed}")));
    }
    if let Some(section) = open {
        return Err(err(section.at, "section is not closed with `}`".into()));
    }

    Ok(Lexed { globals, sections })
}
