//! Matching received IMAP data against expected arguments: variables, `$` wildcards,
//! relative sequences, `$modseqN` and the `$!` list directives.

use std::collections::HashMap;

use super::args::{Arg, DisplayArg};

/// Returned by the match functions when everything matched.
pub const FULL: usize = usize::MAX;

/// Where a comparison went wrong, for failure messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Position of the element, e.g. `3` or `3.5` (1-based, per list level).
    pub path: String,
    pub expected: String,
    pub got: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "element {}: expected {}, got {}",
            self.path, self.expected, self.got
        )
    }
}

/// Variables and per-group state used while matching and expanding.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    values: HashMap<String, Vec<u8>>,
    /// Variables captured during the current match attempt (rolled back on failure).
    added: Vec<String>,
    /// Initial sequence → current sequence (0 = expunged), reset per group.
    pub seqmap: Vec<u32>,
    /// Apply the `$modseqN` ordering rule.
    pub modseq_rule: bool,
    highest_modseq_idx: u32,
    highest_modseq_value: u64,
    /// Configuration errors found while matching (printed by the runner).
    pub warnings: Vec<String>,
    /// Record the first mismatch (diagnosis runs only).
    diagnose: bool,
    mismatch: Option<Mismatch>,
    path: Vec<usize>,
    /// Offset of the current argument slice within its list (diagnosis only).
    base: usize,
}

fn is_var_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `$name` or `${name}` and nothing else (not `$`, `$$`, `$]`, `${case:..}`).
fn is_lone_variable(pat: &[u8]) -> bool {
    match pat.strip_prefix(b"$") {
        Some([b'{', inner @ .., b'}']) => {
            !inner.is_empty() && !inner.contains(&b'}') && !inner.starts_with(b"case:")
        }
        Some(name) => !name.is_empty() && name.iter().all(|&b| is_var_char(b)),
        None => false,
    }
}

fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Vars {
    pub fn new(modseq_rule: bool) -> Self {
        Vars {
            modseq_rule,
            ..Vars::default()
        }
    }

    pub fn set(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.values.insert(name.to_owned(), value.into());
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.values.get(name).map(Vec::as_slice)
    }

    pub fn remove(&mut self, name: &str) {
        self.values.remove(name);
    }

    /// Starts a new group: identity sequence map for `exists` messages.
    pub fn reset_seqmap(&mut self, exists: u32) {
        self.seqmap = (1..=exists).collect();
    }

    /// Keeps the sequence map current after `* <seq> EXPUNGE`.
    pub fn expunge(&mut self, seq: u32) {
        if seq == 0 || seq as usize > self.seqmap.len() {
            return;
        }
        for s in self.seqmap.iter_mut().skip(seq as usize - 1) {
            if *s == seq {
                *s = 0;
            } else if *s > seq {
                *s -= 1;
            }
        }
    }

    fn relative_seq(&self, seq: u32) -> Vec<u8> {
        if seq == 0 {
            return b"<zero seq>".to_vec();
        }
        match self.seqmap.get(seq as usize - 1) {
            None => b"<out of range>".to_vec(),
            Some(0) => b"<expunged>".to_vec(),
            Some(n) => n.to_string().into_bytes(),
        }
    }

    /// Expands variables in a command (or `!output`) line. `$$` is `$`, `$!...` words
    /// are dropped, `$N` is a relative sequence. An unset variable is an error unless
    /// `keep_unset` (then it becomes `$`). On error the partial expansion is returned too.
    pub fn expand_all(&self, line: &[u8], keep_unset: bool) -> (Vec<u8>, Option<String>) {
        let mut out = Vec::with_capacity(line.len());
        let mut i = 0;
        while i < line.len() {
            let b = line[i];
            if b != b'$' || i + 1 == line.len() {
                out.push(b);
                i += 1;
                continue;
            }
            i += 1;
            match line[i] {
                b'$' => {
                    out.push(b'$');
                    i += 1;
                }
                b'!' => {
                    // For display, a directive also ends at ')' (the C tool eats it).
                    while i + 1 < line.len()
                        && line[i + 1] != b' '
                        && !(keep_unset && line[i + 1] == b')')
                    {
                        i += 1;
                    }
                    i += 1;
                    if keep_unset && line.get(i) == Some(&b' ') {
                        i += 1;
                    }
                }
                _ => {
                    let name: &[u8];
                    if line[i] == b'{' {
                        let Some(close) = memchr::memchr(b'}', &line[i + 1..]) else {
                            return (out, Some("Missing '}'".into()));
                        };
                        name = &line[i + 1..i + 1 + close];
                        i += close + 2;
                    } else {
                        let start = i;
                        while i < line.len() && is_var_char(line[i]) {
                            i += 1;
                        }
                        name = &line[start..i];
                    }
                    if let Some(seq) = parse_u32(name) {
                        out.extend(self.relative_seq(seq));
                    } else if let (true, Some(v)) = (keep_unset, name.strip_prefix(b"case:")) {
                        out.extend_from_slice(v);
                    } else if let Some(v) = self.values.get(&*String::from_utf8_lossy(name)) {
                        out.extend_from_slice(v);
                    } else if keep_unset {
                        out.push(b'$');
                    } else {
                        return (
                            out,
                            Some(format!("Uninitialized variable: {}", lossy(name))),
                        );
                    }
                }
            }
        }
        (out, None)
    }

    fn modseq_capture(&mut self, idx: u32, value: &[u8]) -> Vec<u8> {
        let Some(v) = std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
        else {
            return b"$modseq-not-number".to_vec();
        };
        if self.highest_modseq_idx > idx {
            self.warnings.push(format!(
                "Modseqs defined in wrong order: $modseq{} followed by $modseq{idx}",
                self.highest_modseq_idx
            ));
            return b"$modseq-order-mismatch".to_vec();
        }
        let at_least = self
            .highest_modseq_value
            .saturating_add(u64::from(idx - self.highest_modseq_idx));
        let mut result = value.to_vec();
        let mut v = v;
        if v < at_least {
            result = format!("$modseq-at-least-{at_least}").into_bytes();
            v = at_least;
        }
        self.highest_modseq_idx = idx;
        self.highest_modseq_value = v;
        result
    }

    /// The first byte the rest of a pattern expands to, without side effects.
    fn first_expanded_byte(&self, pat: &[u8]) -> Option<u8> {
        match pat.first() {
            None => None,
            Some(&b) if b != b'$' => Some(b),
            Some(_) => match pat.get(1) {
                Some(b'$') => Some(b'$'),
                Some(b'{') => {
                    let close = memchr::memchr(b'}', &pat[2..])?;
                    let name = &pat[2..2 + close];
                    if let Some(rest) = name.strip_prefix(b"case:") {
                        return rest.first().copied();
                    }
                    self.var_first_byte(name)
                }
                _ => {
                    let end = pat[1..]
                        .iter()
                        .position(|&b| !is_var_char(b))
                        .map_or(pat.len(), |p| p + 1);
                    self.var_first_byte(&pat[1..end])
                }
            },
        }
    }

    fn var_first_byte(&self, name: &[u8]) -> Option<u8> {
        if let Some(seq) = parse_u32(name) {
            return self.relative_seq(seq).first().copied();
        }
        self.values
            .get(&*String::from_utf8_lossy(name))
            .and_then(|v| v.first().copied())
    }

    /// Walks pattern `pat` over `input`, capturing unset variables. Returns the
    /// expanded pattern and whether comparison is case-insensitive, or `None` on an
    /// early mismatch.
    pub fn expand_input(&mut self, pat: &[u8], input: &[u8]) -> Option<(Vec<u8>, bool)> {
        let mut out = Vec::with_capacity(pat.len());
        let mut icase = true;
        let mut p = 0;
        let mut i = 0;
        while p < pat.len() {
            if pat[p] != b'$' || pat.get(p + 1) == Some(&b'$') {
                if pat[p] == b'$' {
                    p += 1;
                }
                let c = pat[p];
                if input.get(i).map(u8::to_ascii_uppercase) != Some(c.to_ascii_uppercase()) {
                    return None;
                }
                i += 1;
                out.push(c);
                p += 1;
                continue;
            }
            p += 1;
            let name: Vec<u8>;
            if pat.get(p) == Some(&b'{') {
                let Some(close) = memchr::memchr(b'}', &pat[p + 1..]) else {
                    return Some((Vec::new(), icase));
                };
                name = pat[p + 1..p + 1 + close].to_vec();
                p += close + 2;
            } else {
                let start = p;
                while p < pat.len() && is_var_char(pat[p]) {
                    p += 1;
                }
                name = pat[start..p].to_vec();
            }
            let name_str = lossy(&name);
            let value: Vec<u8> = if let Some(seq) = parse_u32(&name) {
                self.relative_seq(seq)
            } else if let Some(v) = name.strip_prefix(b"case:") {
                icase = false;
                v.to_vec()
            } else if let Some(v) = (!name.is_empty())
                .then(|| self.values.get(&name_str))
                .flatten()
            {
                v.clone()
            } else {
                let rest = input.get(i..).unwrap_or_default();
                let end = match self.first_expanded_byte(&pat[p..]) {
                    None => rest.len(),
                    Some(stop) => rest
                        .iter()
                        .position(|b| b.eq_ignore_ascii_case(&stop))
                        .unwrap_or(rest.len()),
                };
                let captured = rest[..end].to_vec();
                let modseq_idx = name_str
                    .strip_prefix("modseq")
                    .and_then(|n| parse_u32(n.as_bytes()));
                if name.is_empty() {
                    captured
                } else if let (true, Some(idx)) = (self.modseq_rule, modseq_idx) {
                    // Not rolled back on mismatch, so the error shows the details.
                    let v = self.modseq_capture(idx, &captured);
                    self.values.insert(name_str, v.clone());
                    v
                } else {
                    self.values.insert(name_str.clone(), captured.clone());
                    self.added.push(name_str);
                    captured
                }
            };
            for b in &value {
                if input.get(i) != Some(b) {
                    return None;
                }
                i += 1;
            }
            out.extend(value);
        }
        Some((out, icase))
    }

    /// Forgets the variables captured since the last [`Vars::commit`].
    pub fn rollback(&mut self) {
        for name in std::mem::take(&mut self.added) {
            self.values.remove(&name);
        }
    }

    /// Keeps the variables captured so far.
    pub fn commit(&mut self) {
        self.added.clear();
    }

    fn note(&mut self, idx: usize, expected: String, got: String) {
        if self.diagnose && self.mismatch.is_none() {
            let mut path: Vec<String> = self.path.iter().map(|p| (p + 1).to_string()).collect();
            path.push((self.base + idx + 1).to_string());
            self.mismatch = Some(Mismatch {
                path: path.join("."),
                expected,
                got,
            });
        }
    }

    /// Matches `args` against `pat`: [`FULL`] on success, otherwise how many leading
    /// elements matched. With `prefix`, the last pattern element may be a prefix of
    /// its input and extra input is allowed (tagged replies, untagged OK/NO/BAD/BYE).
    pub fn match_args(&mut self, pat: &[Arg], args: &[Arg], max: usize, prefix: bool) -> usize {
        let mut ret = 0;
        let mut ai = 0;
        let mut max = max;
        for (mi, m) in pat.iter().enumerate() {
            if max == 0 {
                break;
            }
            let a = args.get(ai);
            let got = || a.map_or("end of list".to_owned(), |a| DisplayArg(a).to_string());
            match m {
                Arg::Nil => {
                    if !matches!(a, Some(Arg::Nil)) {
                        self.note(ai, "NIL".into(), got());
                        return ret;
                    }
                }
                Arg::List(ml) => {
                    let Some(al) = a.and_then(Arg::as_list) else {
                        self.note(ai, DisplayArg(m).to_string(), got());
                        return ret;
                    };
                    self.path.push(self.base + ai);
                    let base = std::mem::replace(&mut self.base, 0);
                    let sub = self.match_list(ml, al);
                    self.base = base;
                    self.path.pop();
                    if sub != FULL {
                        return ret + sub;
                    }
                }
                _ => {
                    let ms = c_str(m.as_astring().unwrap_or_default());
                    if ms == b"$" && matches!(a, Some(Arg::List(_))) {
                        // "$" also skips over a list.
                    } else if ms == b"$]" {
                        while let Some(s) = args.get(ai).and_then(Arg::as_atom) {
                            if memchr::memchr(b']', s).is_some() {
                                break;
                            }
                            ai += 1;
                        }
                    } else {
                        // A lone variable takes NIL as its value (an INBOX with a NIL
                        // hierarchy delimiter is legal, RFC 3501 §7.2.2): `$inboxsep`
                        // binds to NIL and later matches only NIL.
                        let nil = matches!(a, Some(Arg::Nil)) && is_lone_variable(ms);
                        let astr = if nil {
                            Some(&b"NIL"[..])
                        } else {
                            a.and_then(Arg::as_astring).map(c_str)
                        };
                        let Some(astr) = astr else {
                            self.note(ai, DisplayArg(m).to_string(), got());
                            return ret;
                        };
                        let Some((mstr, icase)) = self.expand_input(ms, astr) else {
                            let shown = self.shown_pattern(m, ms);
                            self.note(ai, shown, got());
                            return ret;
                        };
                        let last = mi + 1 == pat.len();
                        let ok = if prefix && last {
                            astr.len() >= mstr.len() && eq(&astr[..mstr.len()], &mstr, icase)
                        } else {
                            eq(astr, &mstr, icase)
                        };
                        if !ok {
                            let shown = self.shown_pattern(m, ms);
                            self.note(ai, shown, got());
                            return ret;
                        }
                    }
                }
            }
            ret += 1;
            ai += 1;
            max -= 1;
        }
        if prefix || ai >= args.len() || max == 0 {
            FULL
        } else {
            let extra = args
                .get(ai)
                .map(|a| DisplayArg(a).to_string())
                .unwrap_or_default();
            self.note(ai, "end of list".into(), extra);
            ret
        }
    }

    /// A pattern element for messages, with its expansion when that differs.
    fn shown_pattern(&self, m: &Arg, ms: &[u8]) -> String {
        if !self.diagnose {
            return String::new();
        }
        let (exp, _) = self.expand_all(ms, true);
        if exp == ms {
            DisplayArg(m).to_string()
        } else {
            format!("{} (expanded: {})", DisplayArg(m), lossy(&exp))
        }
    }

    fn match_list(&mut self, pat: &[Arg], args: &[Arg]) -> usize {
        let mut unordered = false;
        let mut chain = 1usize;
        let mut noextra: Option<bool> = None;
        let mut ignores: Vec<&[u8]> = Vec::new();
        let mut bans: Vec<&[u8]> = Vec::new();
        let mut start = 0;
        for m in pat {
            let Some(d) = m.as_atom().and_then(|s| s.strip_prefix(b"$!")) else {
                break;
            };
            start += 1;
            if let Some(n) = d.strip_prefix(b"unordered") {
                unordered = true;
                if noextra.is_none() {
                    noextra = Some(false);
                }
                if let Some(n) = n.strip_prefix(b"=").and_then(parse_u32) {
                    chain = (n as usize).max(1);
                }
            } else if d == b"ordered" {
                unordered = false;
            } else if d == b"extra" {
                noextra = Some(false);
            } else if d == b"noextra" {
                noextra = Some(true);
            } else if let Some(x) = d.strip_prefix(b"ignore=") {
                ignores.push(x);
            } else if let Some(x) = d.strip_prefix(b"ban=") {
                bans.push(x);
            }
        }
        let noextra = noextra.unwrap_or(true);
        let pat = &pat[start..];
        if !unordered {
            return self.match_args(pat, args, FULL, false);
        }
        if !args.len().is_multiple_of(chain) {
            self.note(
                0,
                format!("a list of {chain}-element chains"),
                format!("{} elements", args.len()),
            );
            return 0;
        }
        let mut matched = vec![false; args.len()];
        let mut ret = 0;
        for (ci, want) in pat.chunks(chain).enumerate() {
            let diagnose = std::mem::replace(&mut self.diagnose, false);
            let mut found = false;
            for i in (0..args.len()).step_by(chain) {
                if self.match_args(want, &args[i..], chain, false) == FULL {
                    matched[i] = true;
                    found = true;
                    break;
                }
            }
            self.diagnose = diagnose;
            if !found && diagnose {
                // Point inside the received chain with the same first element, if any.
                let key = want.first().and_then(Arg::as_astring).unwrap_or_default();
                let same_key = (0..args.len()).step_by(chain).find(|&i| {
                    args[i]
                        .as_astring()
                        .is_some_and(|s| !key.starts_with(b"$") && s.eq_ignore_ascii_case(key))
                });
                if let Some(i) = same_key {
                    let base = std::mem::replace(&mut self.base, i);
                    let _ = self.match_args(want, &args[i..], chain, false);
                    self.base = base;
                }
            }
            if !found {
                let want_s = super::args::Display(want).to_string();
                self.note(
                    ci * chain,
                    format!("{want_s} somewhere in the list"),
                    format!("({})", super::args::Display(args)),
                );
                return ret;
            }
            ret += 1;
        }
        let unmatched = (0..args.len())
            .step_by(chain)
            .filter(|&i| !matched[i])
            .filter_map(|i| args[i].as_astring().map(|s| (i, s)));
        for (i, s) in unmatched {
            let listed = |list: &[&[u8]]| list.iter().any(|x| x.eq_ignore_ascii_case(s));
            if noextra && !listed(&ignores) {
                self.note(
                    i,
                    "no further elements".into(),
                    format!("extra element {}", lossy(s)),
                );
                return ret;
            }
            if !noextra && listed(&bans) {
                self.note(
                    i,
                    format!("no {}", lossy(s)),
                    format!("banned element {}", lossy(s)),
                );
                return ret;
            }
        }
        FULL
    }

    /// Re-runs a failed match on a copy of the variables and describes the first
    /// mismatching element.
    pub fn diagnose(&self, pat: &[Arg], args: &[Arg], prefix: bool) -> Option<Mismatch> {
        let mut copy = self.clone();
        copy.diagnose = true;
        copy.mismatch = None;
        copy.path.clear();
        copy.warnings.clear();
        if copy.match_args(pat, args, FULL, prefix) == FULL {
            return None;
        }
        copy.mismatch
    }
}

/// The C tool compares values as C strings: a NUL byte (possible in `~{n}` literals)
/// ends the value. Kept so verdicts match (release-2.3's append-binary relies on it).
fn c_str(s: &[u8]) -> &[u8] {
    match memchr::memchr(0, s) {
        Some(i) => &s[..i],
        None => s,
    }
}

fn eq(a: &[u8], b: &[u8], icase: bool) -> bool {
    if icase {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::{parse_lenient, parse_strict};
    use super::*;

    fn m(vars: &mut Vars, pat: &str, input: &str, prefix: bool) -> bool {
        let p = parse_strict(pat.as_bytes()).unwrap();
        let a = parse_lenient(input.as_bytes());
        let r = vars.match_args(&p, &a, FULL, prefix) == FULL;
        if r {
            vars.commit();
        } else {
            vars.rollback();
        }
        r
    }

    #[test]
    fn captures_and_reuse() {
        let mut v = Vars::default();
        assert!(m(&mut v, "1 fetch (uid $uid1)", "1 FETCH (UID 42)", false));
        assert_eq!(v.get("uid1"), Some(&b"42"[..]));
        assert!(m(
            &mut v,
            "esearch all $uid1:$x",
            "ESEARCH ALL 42:50",
            false
        ));
        assert_eq!(v.get("x"), Some(&b"50"[..]));
        assert!(!m(&mut v, "1 fetch (uid $uid1)", "1 FETCH (UID 43)", false));
        // Failed attempts roll their captures back.
        assert!(!m(
            &mut v,
            "2 fetch (uid $new) x",
            "2 FETCH (UID 7) y",
            false
        ));
        assert_eq!(v.get("new"), None);
    }

    #[test]
    fn a_lone_unset_variable_binds_nil() {
        // RFC 3501 §7.2.2: NIL is a legal hierarchy delimiter (upstream's `list`).
        let mut v = Vars::default();
        assert!(m(
            &mut v,
            "list () $inboxsep INBOX",
            "LIST () NIL INBOX",
            false
        ));
        assert_eq!(v.get("inboxsep"), Some(&b"NIL"[..]));
        assert!(m(
            &mut v,
            "list () $inboxsep INBOX",
            "LIST () NIL INBOX",
            false
        ));
        assert!(!m(
            &mut v,
            "list () $inboxsep INBOX",
            "LIST () \"/\" INBOX",
            false
        ));
        let mut v = Vars::default();
        assert!(m(&mut v, "list () ${sep} x", "LIST () NIL x", false));
        v.set("sep", "/");
        assert!(!m(&mut v, "list () $sep x", "LIST () NIL x", false));
        // `$` alone and variables inside text still never match NIL.
        assert!(!m(&mut v, "x $", "X NIL", false));
        assert!(!m(&mut v, "x a$y", "X NIL", false));
    }

    #[test]
    fn case_rules() {
        let mut v = Vars::default();
        assert!(m(&mut v, "list () $sep Foo", "LIST () / FOO", false));
        assert!(!m(
            &mut v,
            "list () $sep ${case:Foo}",
            "LIST () / FOO",
            false
        ));
        assert!(m(
            &mut v,
            "list () $sep ${case:FOO}",
            "LIST () / FOO",
            false
        ));
        v.set("name", "Ab");
        assert!(!m(&mut v, "x $name", "X ab", false));
    }

    #[test]
    fn wildcards_and_prefix() {
        let mut v = Vars::default();
        assert!(m(
            &mut v,
            "1 fetch (uid $ flags $)",
            "1 FETCH (UID 1 FLAGS (\\Seen))",
            false
        ));
        assert!(!m(&mut v, "x $", "X NIL", false));
        assert!(m(
            &mut v,
            "ok [capability $]",
            "OK [CAPABILITY IMAP4rev1 X] Done",
            true
        ));
        assert!(m(
            &mut v,
            "ok [capability $] done",
            "OK [CAPABILITY IMAP4rev1 X] Done",
            true
        ));
        assert!(m(
            &mut v,
            "no [trycreate]",
            "NO [TRYCREATE] Mailbox doesn't exist",
            true
        ));
        assert!(!m(
            &mut v,
            "no [trycreate]",
            "NO [TRYCREATE] Mailbox",
            false
        ));
        assert!(m(&mut v, "", "OK whatever", true));
        assert!(!m(&mut v, "ok", "NO ok", true));
    }

    #[test]
    fn list_directives() {
        let mut v = Vars::default();
        let flags =
            "1 fetch ($!unordered=2 flags ($!unordered $!noextra $!ignore=\\recent \\seen))";
        assert!(m(&mut v, flags, "1 FETCH (FLAGS (\\Recent \\Seen))", false));
        assert!(!m(
            &mut v,
            flags,
            "1 FETCH (FLAGS (\\Seen \\Flagged))",
            false
        ));
        assert!(!m(&mut v, "search 1 2", "SEARCH 2 1", false));
        assert!(m(&mut v, "x ($!unordered 1 2)", "X (2 3 1)", false));
        assert!(!m(
            &mut v,
            "x ($!unordered $!noextra 1 2)",
            "X (2 3 1)",
            false
        ));
        assert!(!m(
            &mut v,
            "x ($!unordered $!ban=3 1 2)",
            "X (2 3 1)",
            false
        ));
        assert!(m(&mut v, "x ($!unordered $!ban=4 1 2)", "X (2 3 1)", false));
        assert!(m(&mut v, "x ($!unordered=2 a 1 b 2)", "X (b 2 a 1)", false));
        assert!(!m(
            &mut v,
            "x ($!unordered=2 a 1 b 2)",
            "X (b 2 a 1 c)",
            false
        ));
    }

    #[test]
    fn relative_sequences() {
        let mut v = Vars::default();
        v.reset_seqmap(5);
        assert!(m(&mut v, "$1 expunge", "1 EXPUNGE", false));
        v.expunge(1);
        assert!(m(&mut v, "$3 expunge", "2 EXPUNGE", false));
        v.expunge(2);
        assert_eq!(
            v.expand_all(b"fetch $5 $1 $9", false).0,
            b"fetch 3 <expunged> <out of range>"
        );
    }

    #[test]
    fn modseq_rule() {
        let mut v = Vars {
            modseq_rule: true,
            ..Vars::default()
        };
        assert!(m(&mut v, "x $modseq1", "X 10", false));
        assert!(!m(&mut v, "x $modseq3", "X 11", false));
        assert_eq!(v.get("modseq3"), Some(&b"$modseq-at-least-12"[..]));
    }

    #[test]
    fn expand_commands() {
        let mut v = Vars::default();
        v.set("mailbox", "box");
        assert_eq!(
            v.expand_all(b"select ${mailbox}2 $$x $!unordered y", false)
                .0,
            b"select box2 $x  y"
        );
        let (_, e) = v.expand_all(b"select $nope", false);
        assert_eq!(e.as_deref(), Some("Uninitialized variable: nope"));
        assert_eq!(v.expand_all(b"a $nope b", true).0, b"a $ b");
        assert_eq!(
            v.expand_all(b"a ${x", false).1.as_deref(),
            Some("Missing '}'")
        );
    }

    #[test]
    fn diagnosis_points_at_element() {
        let v = Vars::default();
        let p =
            parse_strict(b"1 fetch ($!unordered=2 flags ($!unordered $!noextra \\seen))").unwrap();
        let a = parse_lenient(b"1 FETCH (FLAGS (\\Seen \\Flagged))");
        let d = v.diagnose(&p, &a, false).unwrap();
        assert_eq!(d.path, "3.2.2");
        assert!(d.got.contains("\\Flagged"), "{d}");
        let p = parse_strict(b"search 1 2 3").unwrap();
        let a = parse_lenient(b"SEARCH 1 3 2");
        let d = v.diagnose(&p, &a, false).unwrap();
        assert_eq!((d.path.as_str(), d.got.as_str()), ("3", "3"));
    }
}
