//! [`ErrorKind`]: which check an error report comes from, as a small stable name.

/// Defines [`ErrorKind`] with its stable names, in the order Totals and the CSV list them.
macro_rules! error_kinds {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// What an error report is about: one kind per check, counted per second in the
        /// CSV timeline and in Totals. The names are stable identifiers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorKind {
            /// Every kind, in declaration order (`ALL[k as usize] == k`).
            pub const ALL: &[ErrorKind] = &[$(ErrorKind::$variant,)*];
            pub const COUNT: usize = Self::ALL.len();

            /// The stable name (`uid-changed`, …).
            pub const fn name(self) -> &'static str {
                match self {
                    $(ErrorKind::$variant => $name,)*
                }
            }

            /// The kind with this name.
            pub fn from_name(name: &str) -> Option<ErrorKind> {
                Self::ALL.iter().copied().find(|k| k.name() == name)
            }
        }
    };
}

error_kinds! {
    /// EXISTS lower than the messages known, without EXPUNGE.
    ExistsShrank = "exists-shrank",
    /// EXPUNGE of a sequence number that doesn't exist.
    ExpungeBeyondExists = "expunge-beyond-exists",
    /// FETCH for a sequence number that doesn't exist.
    FetchBeyondExists = "fetch-beyond-exists",
    /// FETCH UID 0.
    InvalidUid = "invalid-uid",
    /// A known sequence number got another UID.
    UidChanged = "uid-changed",
    /// A UID out of order with the UIDs around it.
    UidOrder = "uid-order",
    /// UIDVALIDITY of the same mailbox changed.
    UidvalidityChanged = "uidvalidity-changed",
    /// A keyword dropped from FLAGS while messages still have it.
    KeywordDropped = "keyword-dropped",
    /// A keyword in FETCH FLAGS that FLAGS never announced.
    UnannouncedKeyword = "unannounced-keyword",
    /// A keyword in PERMANENTFLAGS that FLAGS never announced.
    UnannouncedPermanentFlag = "unannounced-permanentflag",
    /// An unknown system flag in FETCH FLAGS.
    InvalidFlag = "invalid-flag",
    /// MODSEQ 0.
    InvalidModseq = "invalid-modseq",
    /// A message's MODSEQ went down.
    ModseqBackwards = "modseq-backwards",
    /// `\Recent` seen in more than one session.
    RecentDuplicate = "recent-duplicate",
    /// `own_flags`: a flag this session owns changed without its STORE.
    OwnedFlagChanged = "owned-flag-changed",
    /// `own_msgs`: the flags of a message this session owns changed without its STORE.
    OwnedMessageChanged = "owned-message-changed",
    /// `own_msgs`: the MODSEQ of a message this session owns changed without its STORE.
    OwnedModseqChanged = "owned-modseq-changed",
    /// `own_flags`: a STORE's change is not in the flags the server reports after it.
    StoreNotApplied = "store-not-applied",
    /// The Message-ID of a UID changed.
    MessageIdChanged = "message-id-changed",
    /// An INTERNALDATE that doesn't parse.
    InvalidInternaldate = "invalid-internaldate",
    /// The INTERNALDATE of a UID changed.
    InternaldateChanged = "internaldate-changed",
    /// RFC822.SIZE or the BODY[] size of a UID changed.
    SizeChanged = "size-changed",
    /// The ENVELOPE of a UID changed.
    EnvelopeChanged = "envelope-changed",
    /// The BODY of a UID changed.
    BodyChanged = "body-changed",
    /// The BODYSTRUCTURE of a UID changed.
    BodystructureChanged = "bodystructure-changed",
    /// A BODY[HEADER.FIELDS (...)] reply of a UID changed.
    HeaderChanged = "header-changed",
    /// A BODY[HEADER.FIELDS (...)] reply with a header not asked for.
    UnexpectedHeader = "unexpected-header",
    /// Two messages with the same Message-ID differ (size, ENVELOPE, BODY, …).
    CopyDiffers = "copy-differs",
    /// A message imaptest wrote itself (APPEND, LMTP) differs from what was sent:
    /// RFC822.SIZE, a BODY[] section, ENVELOPE or BODYSTRUCTURE (the field is named).
    ContentMismatch = "content-mismatch",
    /// SEARCH didn't return a message that must match.
    SearchMissing = "search-missing",
    /// SEARCH returned a message that cannot match.
    SearchExtra = "search-extra",
    /// SEARCH returned a sequence number that doesn't exist.
    SearchBeyondExists = "search-beyond-exists",
    /// SEARCH completed without an untagged SEARCH reply.
    SearchNoReply = "search-no-reply",
    /// Two untagged SEARCH replies for one SEARCH.
    SearchDuplicateReply = "search-duplicate-reply",
    /// `checkpoint=`: the views of the connections disagree.
    CheckpointMismatch = "checkpoint-mismatch",
    /// `qresync`: a QRESYNC SELECT didn't report an expunge since the cached
    /// HIGHESTMODSEQ (VANISHED (EARLIER) missed a UID known to be gone).
    QresyncMissedExpunge = "qresync-missed-expunge",
    /// `qresync`: a QRESYNC SELECT didn't FETCH a message changed since the cached
    /// HIGHESTMODSEQ.
    QresyncMissedFlags = "qresync-missed-flags",
    /// VANISHED of a UID the mailbox can't have had (plain VANISHED of a UID not in
    /// the view; VANISHED (EARLIER) at or above UIDNEXT).
    VanishedUnknownUid = "vanished-unknown-uid",
    /// A command failed (tagged NO) where it shouldn't.
    CommandFailed = "command-failed",
    /// A tagged or untagged BAD.
    BadReply = "bad-reply",
    /// Malformed or unexpected input (parse errors, a reply nothing asked for, no BYE
    /// at LOGOUT).
    Protocol = "protocol",
    /// BYE without our LOGOUT.
    UnexpectedBye = "unexpected-bye",
    /// No reply within the timeout.
    NoReply = "no-reply",
    /// The connection broke (read or write failed, closed by the server).
    Disconnected = "disconnected",
    /// Connecting or the greeting failed.
    ConnectFailed = "connect-failed",
    /// LOGIN or AUTHENTICATE failed.
    LoginFailed = "login-failed",
    /// Profile mode: the LMTP server refused a delivery.
    DeliveryRefused = "delivery-refused",
    /// Profile mode: an LMTP delivery got no answer (connection or protocol failure).
    DeliveryFailed = "delivery-failed",
    /// Known server quirk (docs/servers.md): data made up for a message another
    /// session expunged (Courier-IMAP's "message unavailable" stand-in).
    ExpungedMessageFabricated = "expunged-message-fabricated",
    /// Known server quirk: DELETE refused with "Mailbox already exists" (Cyrus's
    /// delayed delete, the same name deleted twice within a second).
    DeleteSaysExists = "delete-says-exists",
    /// Known server quirk: GENURLAUTH refused for a valid URL (Cyrus, also after
    /// RESETKEY).
    GenurlauthRefused = "genurlauth-refused",
    /// Known server quirk: BAD for a command with a legal atom starting with `~`, such
    /// as `LIST "" ~foo` (Courier).
    TildeAtomBad = "tilde-atom-bad",
    /// Known server quirk: a SEARCH with two negated size keys of one kind answered
    /// with the looser bound (Dovecot 2.3).
    SearchSizeMerge = "search-size-merge",
    /// The server went past one of imaptest's bounds (docs/limits.md), e.g. an EXISTS
    /// beyond the messages the model tracks; the connection is dropped.
    LimitExceeded = "limit-exceeded",
    /// Known server quirk: a MIME part's body (size, `BODY[n]`) includes the CR of the
    /// CRLF before the next boundary, for message/rfc822 parts and inside them
    /// (Courier).
    PartTakesBoundaryCr = "part-takes-boundary-cr",
    /// Known server quirk: BODYSTRUCTURE says "8bit" for a part without a
    /// Content-Transfer-Encoding header, whose encoding is 7bit (Courier).
    DefaultEncoding8bit = "default-encoding-8bit",
    /// An error reported without a kind.
    Other = "other",
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn all_is_in_declaration_order() {
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k:?}");
        }
        assert_eq!(ErrorKind::COUNT, ErrorKind::ALL.len());
    }

    #[test]
    fn names_are_unique_lowercase_identifiers() {
        let mut seen = HashSet::new();
        for k in ErrorKind::ALL {
            let name = k.name();
            assert!(seen.insert(name), "{name} twice");
            assert_eq!(ErrorKind::from_name(name), Some(*k));
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{name}"
            );
        }
    }
}
