//! `SCRAM-SHA-1` (RFC 5802) and `SCRAM-SHA-256` (RFC 7677), without channel binding.
//!
//! Exchange:
//!
//! ```text
//! C: n,[a=authzid],n=user,r=cnonce                      client-first
//! S: r=cnonce+snonce,s=base64(salt),i=iterations         server-first
//! C: c=base64(gs2 header),r=cnonce+snonce,p=base64(proof) client-final
//! S: v=base64(server signature)  |  e=error               server-final
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng as _;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::{Credentials, Mechanism, SaslError, check_no_nul};

/// Iteration counts above this are refused, to bound the CPU a server can make a
/// client burn (1 000 000 rounds of PBKDF2-HMAC-SHA-256 take about 0.13 s).
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// Default bound on [`ScramCache`] entries.
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;

/// Random bytes in a client nonce (base64-encoded to 32 printable characters).
const NONCE_BYTES: usize = 24;

/// The hash function a SCRAM variant uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScramHash {
    Sha1,
    Sha256,
}

impl ScramHash {
    /// `"SCRAM-SHA-1"` or `"SCRAM-SHA-256"`.
    pub fn mechanism_name(self) -> &'static str {
        match self {
            ScramHash::Sha1 => "SCRAM-SHA-1",
            ScramHash::Sha256 => "SCRAM-SHA-256",
        }
    }

    /// HMAC over the concatenation of `parts`.
    fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            // HMAC accepts keys of any length: this cannot fail.
            let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC key of any length");
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            ScramHash::Sha1 => run::<Hmac<Sha1>>(key, parts),
            ScramHash::Sha256 => run::<Hmac<Sha256>>(key, parts),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => Sha1::digest(data).to_vec(),
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    /// SaltedPassword and the keys derived from it: the expensive part.
    fn derive(self, password: &[u8], salt: &[u8], iterations: u32) -> ScramKeys {
        let mut salted = [0u8; 32];
        let salted = match self {
            ScramHash::Sha1 => {
                let out = &mut salted[..20];
                pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, out);
                out
            }
            ScramHash::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut salted);
                &mut salted[..]
            }
        };
        let client_key = self.hmac(salted, &[b"Client Key"]);
        let stored_key = self.hash(&client_key);
        let server_key = self.hmac(salted, &[b"Server Key"]);
        salted.fill(0);
        ScramKeys {
            client_key,
            stored_key,
            server_key,
        }
    }
}

/// The keys a client needs per (hash, password, salt, iterations).
struct ScramKeys {
    client_key: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

#[derive(PartialEq, Eq, Hash)]
struct CacheKey {
    hash: ScramHash,
    iterations: u32,
    password: Box<str>,
    salt: Box<[u8]>,
}

#[derive(Default)]
struct CacheMap {
    map: HashMap<Arc<CacheKey>, Arc<ScramKeys>>,
    /// Insertion order, for evicting the oldest entry when full.
    order: VecDeque<Arc<CacheKey>>,
}

struct CacheInner {
    capacity: usize,
    entries: Mutex<CacheMap>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Shared cache of SCRAM client keys, so repeated logins of the same user skip
/// PBKDF2 (RFC 5802 §5.1). Cheap to clone (all clones share one cache), `Send +
/// Sync`, bounded: when full, the oldest entry is evicted.
#[derive(Clone)]
pub struct ScramCache {
    inner: Arc<CacheInner>,
}

impl Default for ScramCache {
    fn default() -> Self {
        ScramCache::with_capacity(DEFAULT_CACHE_CAPACITY)
    }
}

impl fmt::Debug for ScramCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCache")
            .field("len", &self.len())
            .field("capacity", &self.inner.capacity)
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish()
    }
}

impl ScramCache {
    /// A cache holding at most `capacity` entries; 0 disables caching.
    pub fn with_capacity(capacity: usize) -> Self {
        ScramCache {
            inner: Arc::new(CacheInner {
                capacity,
                entries: Mutex::new(CacheMap::default()),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        }
    }

    /// Entries currently cached.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every entry (the hit and miss counters are kept).
    pub fn clear(&self) {
        let mut entries = self.lock();
        entries.map.clear();
        entries.order.clear();
    }

    /// Key derivations answered from the cache.
    pub fn hits(&self) -> u64 {
        self.inner.hits.load(Ordering::Relaxed)
    }

    /// Key derivations that ran PBKDF2.
    pub fn misses(&self) -> u64 {
        self.inner.misses.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, CacheMap> {
        // A panic elsewhere cannot leave the map inconsistent: recover it.
        self.inner
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn keys(
        &self,
        hash: ScramHash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Arc<ScramKeys> {
        if self.inner.capacity == 0 {
            self.inner.misses.fetch_add(1, Ordering::Relaxed);
            return Arc::new(hash.derive(password.as_bytes(), salt, iterations));
        }
        let key = CacheKey {
            hash,
            iterations,
            password: password.into(),
            salt: salt.into(),
        };
        if let Some(keys) = self.lock().map.get(&key) {
            self.inner.hits.fetch_add(1, Ordering::Relaxed);
            return Arc::clone(keys);
        }
        self.inner.misses.fetch_add(1, Ordering::Relaxed);
        // Derive without holding the lock: two racing logins may both derive.
        let keys = Arc::new(hash.derive(password.as_bytes(), salt, iterations));
        let mut entries = self.lock();
        if !entries.map.contains_key(&key) {
            while entries.map.len() >= self.inner.capacity {
                match entries.order.pop_front() {
                    Some(oldest) => {
                        entries.map.remove(&*oldest);
                    }
                    None => break,
                }
            }
            let key = Arc::new(key);
            entries.order.push_back(Arc::clone(&key));
            entries.map.insert(key, Arc::clone(&keys));
        }
        keys
    }
}

enum State {
    /// Nothing sent yet.
    Initial,
    /// client-first sent; `resend_left`: `step(b"")` may still return it once.
    ClientFirstSent { resend_left: bool },
    /// client-final sent; waiting for `v=`.
    ClientFinalSent { server_signature: Vec<u8> },
    /// The server proved it knows the password.
    Verified,
    /// An error ended the exchange.
    Failed,
}

/// A SCRAM client exchange (`SCRAM-SHA-1` or `SCRAM-SHA-256`).
pub struct ScramClient {
    hash: ScramHash,
    password: String,
    /// `n,,` or `n,a=<authzid>,`.
    gs2_header: String,
    client_nonce: String,
    /// `n=<user>,r=<nonce>`.
    client_first_bare: String,
    cache: ScramCache,
    state: State,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .field("client_first_bare", &self.client_first_bare)
            .finish_non_exhaustive()
    }
}

/// Escapes a SCRAM `saslname`: `,` → `=2C`, `=` → `=3D`.
fn saslname(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            ',' => out.push_str("=2C"),
            '=' => out.push_str("=3D"),
            c => out.push(c),
        }
    }
    out
}

/// Equality without an early exit on the first differing byte.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `printable` from RFC 5802 §7: `%x21-2B / %x2D-7E` (no comma).
fn is_printable_nonce(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, 0x21..=0x2B | 0x2D..=0x7E))
}

fn malformed(message: &'static str, reason: impl Into<String>) -> SaslError {
    SaslError::Malformed {
        message,
        reason: reason.into(),
    }
}

/// The value of an `e=` attribute, up to any extension.
fn server_error(rest: &str) -> SaslError {
    SaslError::ServerError(rest.split(',').next().unwrap_or_default().to_owned())
}

struct ServerFirst<'a> {
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: u32,
}

/// Parses `[m=ext,]r=nonce,s=salt,i=count[,ext...]`.
fn parse_server_first<'a>(msg: &'a str, client_nonce: &str) -> Result<ServerFirst<'a>, SaslError> {
    const WHAT: &str = "server-first";
    if let Some(rest) = msg.strip_prefix("e=") {
        return Err(server_error(rest));
    }
    let mut attrs = msg.split(',');
    let mut next = attrs.next().unwrap_or_default();
    if let Some(ext) = next.strip_prefix("m=") {
        return Err(SaslError::MandatoryExtension(ext.to_owned()));
    }

    let nonce = next
        .strip_prefix("r=")
        .ok_or_else(|| malformed(WHAT, "expected r= (nonce) first"))?;
    if nonce.is_empty() || !is_printable_nonce(nonce) {
        return Err(malformed(WHAT, "nonce is empty or not printable"));
    }
    if nonce.len() <= client_nonce.len() || !nonce.starts_with(client_nonce) {
        return Err(SaslError::NonceMismatch);
    }

    next = attrs
        .next()
        .ok_or_else(|| malformed(WHAT, "missing s= (salt)"))?;
    let salt = next
        .strip_prefix("s=")
        .ok_or_else(|| malformed(WHAT, "expected s= (salt) after the nonce"))?;
    let salt = B64
        .decode(salt)
        .map_err(|e| malformed(WHAT, format!("salt is not base64: {e}")))?;
    if salt.is_empty() {
        return Err(malformed(WHAT, "empty salt"));
    }

    next = attrs
        .next()
        .ok_or_else(|| malformed(WHAT, "missing i= (iteration count)"))?;
    let count = next
        .strip_prefix("i=")
        .ok_or_else(|| malformed(WHAT, "expected i= (iteration count) after the salt"))?;
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(
            WHAT,
            format!("iteration count {count:?} is not a positive integer"),
        ));
    }
    let digits = count.trim_start_matches('0');
    let iterations = match digits.parse::<u64>() {
        Ok(n) => n,
        Err(_) if digits.is_empty() => 0,
        Err(_) => u64::MAX, // more digits than fit: certainly too many
    };
    if iterations == 0 {
        return Err(SaslError::IterationsTooLow(0));
    }
    if iterations > u64::from(MAX_ITERATIONS) {
        return Err(SaslError::IterationsTooHigh {
            count: iterations,
            max: MAX_ITERATIONS,
        });
    }
    // Further attributes are extensions; the client ignores them (RFC 5802 §5.1).
    Ok(ServerFirst {
        nonce,
        salt,
        iterations: iterations as u32,
    })
}

impl ScramClient {
    /// A client with a fresh random nonce (from the thread-local CSPRNG).
    ///
    /// Errors: a NUL byte in any credential, or an empty user name.
    pub fn new(hash: ScramHash, creds: Credentials, cache: &ScramCache) -> Result<Self, SaslError> {
        let mut raw = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut raw);
        Self::with_nonce(hash, creds, cache, &B64.encode(raw))
    }

    /// A client with a fixed nonce, for reproducing known exchanges in tests.
    /// `nonce` must be printable ASCII without commas.
    pub(crate) fn with_nonce(
        hash: ScramHash,
        creds: Credentials,
        cache: &ScramCache,
        nonce: &str,
    ) -> Result<Self, SaslError> {
        check_no_nul("user name", &creds.authcid)?;
        check_no_nul("password", &creds.password)?;
        if creds.authcid.is_empty() {
            return Err(SaslError::InvalidCredentials(
                "SCRAM needs a non-empty user name".into(),
            ));
        }
        let gs2_header = match creds.authzid.as_deref() {
            Some(authzid) if !authzid.is_empty() => {
                check_no_nul("authorization identity", authzid)?;
                format!("n,a={},", saslname(authzid))
            }
            _ => "n,,".to_owned(),
        };
        debug_assert!(!nonce.is_empty() && is_printable_nonce(nonce));
        let client_first_bare = format!("n={},r={nonce}", saslname(&creds.authcid));
        Ok(ScramClient {
            hash,
            password: creds.password,
            gs2_header,
            client_nonce: nonce.to_owned(),
            client_first_bare,
            cache: cache.clone(),
            state: State::Initial,
        })
    }

    fn client_first(&self) -> Vec<u8> {
        let mut msg = Vec::with_capacity(self.gs2_header.len() + self.client_first_bare.len());
        msg.extend_from_slice(self.gs2_header.as_bytes());
        msg.extend_from_slice(self.client_first_bare.as_bytes());
        msg
    }

    /// Answers server-first with client-final.
    fn client_final(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        let server_first =
            std::str::from_utf8(challenge).map_err(|_| malformed("server-first", "not UTF-8"))?;
        let sf = parse_server_first(server_first, &self.client_nonce)?;
        let keys = self
            .cache
            .keys(self.hash, &self.password, &sf.salt, sf.iterations);

        let without_proof = format!("c={},r={}", B64.encode(&self.gs2_header), sf.nonce);
        let auth_message: [&[u8]; 5] = [
            self.client_first_bare.as_bytes(),
            b",",
            server_first.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let mut proof = self.hash.hmac(&keys.stored_key, &auth_message);
        for (p, k) in proof.iter_mut().zip(&keys.client_key) {
            *p ^= k;
        }
        let server_signature = self.hash.hmac(&keys.server_key, &auth_message);

        let mut out = without_proof;
        out.push_str(",p=");
        B64.encode_string(&proof, &mut out);
        self.state = State::ClientFinalSent { server_signature };
        Ok(out.into_bytes())
    }

    /// Checks server-final.
    fn verify(challenge: &[u8], expected: &[u8]) -> Result<(), SaslError> {
        const WHAT: &str = "server-final";
        let msg = std::str::from_utf8(challenge).map_err(|_| malformed(WHAT, "not UTF-8"))?;
        if let Some(rest) = msg.strip_prefix("e=") {
            return Err(server_error(rest));
        }
        let signature = msg
            .strip_prefix("v=")
            .ok_or_else(|| malformed(WHAT, "expected v= (server signature) or e= (error)"))?;
        let signature = signature.split(',').next().unwrap_or_default();
        let signature = B64
            .decode(signature)
            .map_err(|e| malformed(WHAT, format!("signature is not base64: {e}")))?;
        if ct_eq(&signature, expected) {
            Ok(())
        } else {
            Err(SaslError::ServerSignatureMismatch)
        }
    }
}

impl Mechanism for ScramClient {
    fn name(&self) -> &'static str {
        self.hash.mechanism_name()
    }

    fn initial_response(&mut self) -> Option<Vec<u8>> {
        match self.state {
            State::Initial | State::ClientFirstSent { .. } => {
                self.state = State::ClientFirstSent { resend_left: true };
                Some(self.client_first())
            }
            // Too late: the exchange is past its first message.
            _ => None,
        }
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        let name = self.name();
        let result = match &self.state {
            State::Initial if challenge.is_empty() => {
                self.state = State::ClientFirstSent { resend_left: false };
                return Ok(self.client_first());
            }
            State::ClientFirstSent { resend_left: true } if challenge.is_empty() => {
                self.state = State::ClientFirstSent { resend_left: false };
                return Ok(self.client_first());
            }
            State::Initial => Err(SaslError::UnexpectedChallenge {
                mechanism: name,
                state: "non-empty challenge before client-first",
            }),
            State::ClientFirstSent { .. } => self.client_final(challenge),
            State::ClientFinalSent { server_signature } => {
                Self::verify(challenge, server_signature).map(|()| {
                    self.state = State::Verified;
                    Vec::new()
                })
            }
            State::Verified => Err(SaslError::UnexpectedChallenge {
                mechanism: name,
                state: "exchange already complete",
            }),
            State::Failed => Err(SaslError::UnexpectedChallenge {
                mechanism: name,
                state: "exchange already failed",
            }),
        };
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn finish(&mut self) -> Result<(), SaslError> {
        match self.state {
            State::Verified => Ok(()),
            _ => Err(SaslError::ServerNotAuthenticated(self.name())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        hash: ScramHash,
        creds: Credentials,
        nonce: &str,
        server_first: &str,
        client_final: &str,
        server_final: &str,
        cache: &ScramCache,
    ) -> String {
        let mut m = ScramClient::with_nonce(hash, creds, cache, nonce).unwrap();
        let first = String::from_utf8(m.initial_response().unwrap()).unwrap();
        let fin = m.step(server_first.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(fin).unwrap(), client_final);
        assert!(matches!(
            m.finish(),
            Err(SaslError::ServerNotAuthenticated(_))
        ));
        assert_eq!(m.step(server_final.as_bytes()).unwrap(), b"");
        m.finish().unwrap();
        first
    }

    const SHA1_NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";
    const SHA1_SERVER_FIRST: &str =
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
    const SHA1_CLIENT_FINAL: &str =
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
    const SHA1_SERVER_FINAL: &str = "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";

    const SHA256_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SHA256_SERVER_FIRST: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                       s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const SHA256_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                       p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SHA256_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    #[test]
    fn rfc5802_sha1_example() {
        let cache = ScramCache::default();
        let first = run(
            ScramHash::Sha1,
            Credentials::new("user", "pencil"),
            SHA1_NONCE,
            SHA1_SERVER_FIRST,
            SHA1_CLIENT_FINAL,
            SHA1_SERVER_FINAL,
            &cache,
        );
        assert_eq!(first, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!((cache.hits(), cache.misses(), cache.len()), (0, 1, 1));
        // Same exchange again: answered from the cache, same bytes.
        run(
            ScramHash::Sha1,
            Credentials::new("user", "pencil"),
            SHA1_NONCE,
            SHA1_SERVER_FIRST,
            SHA1_CLIENT_FINAL,
            SHA1_SERVER_FINAL,
            &cache,
        );
        assert_eq!((cache.hits(), cache.misses(), cache.len()), (1, 1, 1));
    }

    #[test]
    fn rfc7677_sha256_example() {
        let cache = ScramCache::default();
        let first = run(
            ScramHash::Sha256,
            Credentials::new("user", "pencil"),
            SHA256_NONCE,
            SHA256_SERVER_FIRST,
            SHA256_CLIENT_FINAL,
            SHA256_SERVER_FINAL,
            &cache,
        );
        assert_eq!(first, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        // Disabled cache: still correct, never stores.
        let off = ScramCache::with_capacity(0);
        run(
            ScramHash::Sha256,
            Credentials::new("user", "pencil"),
            SHA256_NONCE,
            SHA256_SERVER_FIRST,
            SHA256_CLIENT_FINAL,
            SHA256_SERVER_FINAL,
            &off,
        );
        assert_eq!((off.len(), off.misses()), (0, 1));
    }

    #[test]
    fn wrong_server_signature() {
        let cache = ScramCache::default();
        let mut m = ScramClient::with_nonce(
            ScramHash::Sha1,
            Credentials::new("user", "pencil"),
            &cache,
            SHA1_NONCE,
        )
        .unwrap();
        m.initial_response();
        m.step(SHA1_SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(
            m.step(b"v=rmF9pqV8S7suAoZWja4dJRkFsKA="),
            Err(SaslError::ServerSignatureMismatch)
        );
        assert!(m.finish().is_err());
        // Wrong password: the real server's signature does not match ours.
        let mut m = ScramClient::with_nonce(
            ScramHash::Sha1,
            Credentials::new("user", "pencil2"),
            &cache,
            SHA1_NONCE,
        )
        .unwrap();
        m.initial_response();
        m.step(SHA1_SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(
            m.step(SHA1_SERVER_FINAL.as_bytes()),
            Err(SaslError::ServerSignatureMismatch)
        );
        // Further steps keep failing.
        assert!(m.step(SHA1_SERVER_FINAL.as_bytes()).is_err());
    }

    #[test]
    fn server_final_error_and_extensions() {
        let cache = ScramCache::default();
        let start = || {
            let mut m = ScramClient::with_nonce(
                ScramHash::Sha1,
                Credentials::new("user", "pencil"),
                &cache,
                SHA1_NONCE,
            )
            .unwrap();
            m.initial_response();
            m.step(SHA1_SERVER_FIRST.as_bytes()).unwrap();
            m
        };
        assert_eq!(
            start().step(b"e=invalid-proof"),
            Err(SaslError::ServerError("invalid-proof".into()))
        );
        assert_eq!(
            start().step(b"e=other-error,x=y"),
            Err(SaslError::ServerError("other-error".into()))
        );
        let mut m = start();
        assert_eq!(
            m.step(format!("{SHA1_SERVER_FINAL},x=ext").as_bytes())
                .unwrap(),
            b""
        );
        m.finish().unwrap();
        for bad in [
            &b""[..],
            b"v=",
            b"v=!!!",
            b"x=1",
            b"\xff\xfe",
            b"rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        ] {
            assert!(
                matches!(
                    start().step(bad),
                    Err(SaslError::Malformed { .. } | SaslError::ServerSignatureMismatch)
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn server_first_extensions_ignored() {
        let cache = ScramCache::default();
        let mut m = ScramClient::with_nonce(
            ScramHash::Sha1,
            Credentials::new("user", "pencil"),
            &cache,
            SHA1_NONCE,
        )
        .unwrap();
        m.initial_response();
        let fin = m
            .step(format!("{SHA1_SERVER_FIRST},x=whatever").as_bytes())
            .unwrap();
        // The proof covers the server-first message as received, so it differs.
        assert!(fin.starts_with(b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p="));
    }

    fn server_first_error(msg: &[u8]) -> SaslError {
        let cache = ScramCache::with_capacity(0);
        let mut m = ScramClient::with_nonce(
            ScramHash::Sha256,
            Credentials::new("user", "pencil"),
            &cache,
            "abc",
        )
        .unwrap();
        let first = m.initial_response().unwrap();
        // Use up the one resend an empty challenge gets, so "" is tested as server-first.
        assert_eq!(m.step(b"").unwrap(), first);
        let err = m.step(msg).unwrap_err();
        assert!(m.finish().is_err());
        err
    }

    #[test]
    fn malformed_server_first() {
        use SaslError::*;
        type Check = fn(&SaslError) -> bool;
        let cases: &[(&[u8], Check)] = &[
            (b"", |e| matches!(e, Malformed { .. })),
            (b"garbage", |e| matches!(e, Malformed { .. })),
            (b"\xff\xfe\x00", |e| matches!(e, Malformed { .. })),
            (b"s=QSXCR+Q6sek8bf92,i=4096", |e| {
                matches!(e, Malformed { .. })
            }),
            (b"r=abcdef", |e| matches!(e, Malformed { .. })),
            (b"r=abcdef,i=4096", |e| matches!(e, Malformed { .. })),
            (b"r=abcdef,s=QSXCR+Q6sek8bf92", |e| {
                matches!(e, Malformed { .. })
            }),
            (b"r=abcdef,s=QSXCR+Q6sek8bf92,", |e| {
                matches!(e, Malformed { .. })
            }),
            (b"r=abcdef,i=4096,s=QSXCR+Q6sek8bf92", |e| {
                matches!(e, Malformed { .. })
            }),
            (b"r=abcdef,s=***,i=4096", |e| matches!(e, Malformed { .. })),
            (b"r=abcdef,s=,i=4096", |e| matches!(e, Malformed { .. })),
            (b"r=abcdef,s=QSXCR+Q6sek8bf9,i=4096", |e| {
                matches!(e, Malformed { .. })
            }),
            (b"r=abcdef,s=QSXCR+Q6sek8bf92,i=", |e| {
                matches!(e, Malformed { .. })
            }),
            (b"r=abcdef,s=QSXCR+Q6sek8bf92,i=-1", |e| {
                matches!(e, Malformed { .. })
            }),
            (b"r=abcdef,s=QSXCR+Q6sek8bf92,i=+5", |e| {
                matches!(e, Malformed { .. })
            }),
            (b"r=abcdef,s=QSXCR+Q6sek8bf92,i=12a", |e| {
                matches!(e, Malformed { .. })
            }),
            (b"r=abcdef,s=QSXCR+Q6sek8bf92,i= 1", |e| {
                matches!(e, Malformed { .. })
            }),
            (b"r=,s=QSXCR+Q6sek8bf92,i=1", |e| {
                matches!(e, Malformed { .. })
            }),
            (b"r=abc\x01,s=QSXCR+Q6sek8bf92,i=1", |e| {
                matches!(e, Malformed { .. })
            }),
            (b"r=abc,s=QSXCR+Q6sek8bf92,i=4096", |e| *e == NonceMismatch),
            (b"r=ab,s=QSXCR+Q6sek8bf92,i=4096", |e| *e == NonceMismatch),
            (b"r=xyzdef,s=QSXCR+Q6sek8bf92,i=4096", |e| {
                *e == NonceMismatch
            }),
            (b"r=abcdef,s=QSXCR+Q6sek8bf92,i=0", |e| {
                *e == IterationsTooLow(0)
            }),
            (b"r=abcdef,s=QSXCR+Q6sek8bf92,i=000", |e| {
                *e == IterationsTooLow(0)
            }),
            (b"r=abcdef,s=QSXCR+Q6sek8bf92,i=1000001", |e| {
                *e == IterationsTooHigh {
                    count: 1_000_001,
                    max: MAX_ITERATIONS,
                }
            }),
            (
                b"r=abcdef,s=QSXCR+Q6sek8bf92,i=99999999999999999999999",
                |e| matches!(e, IterationsTooHigh { .. }),
            ),
            (b"m=ext,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096", |e| {
                *e == MandatoryExtension("ext".into())
            }),
            (b"e=unknown-user", |e| {
                *e == ServerError("unknown-user".into())
            }),
        ];
        for (msg, check) in cases {
            let err = server_first_error(msg);
            assert!(
                check(&err),
                "{:?} gave {err:?}",
                String::from_utf8_lossy(msg)
            );
        }
    }

    #[test]
    fn iteration_count_bounds_accepted() {
        let cache = ScramCache::with_capacity(0);
        let mut m = ScramClient::with_nonce(
            ScramHash::Sha1,
            Credentials::new("user", "pencil"),
            &cache,
            "abc",
        )
        .unwrap();
        m.initial_response();
        assert!(m.step(b"r=abcd,s=QSXCR+Q6sek8bf92,i=01").is_ok());
    }

    #[test]
    fn master_user_and_escaping() {
        let cache = ScramCache::default();
        let mut m = ScramClient::with_nonce(
            ScramHash::Sha256,
            Credentials::master("us=er,x", "ma,ster=", "pw"),
            &cache,
            "nonce",
        )
        .unwrap();
        assert_eq!(
            m.initial_response().unwrap(),
            b"n,a=us=3Der=2Cx,n=ma=2Cster=3D,r=nonce".to_vec()
        );
        let fin = m.step(b"r=nonceXYZ,s=QSXCR+Q6sek8bf92,i=16").unwrap();
        let expected_c = B64.encode("n,a=us=3Der=2Cx,");
        assert!(
            fin.starts_with(format!("c={expected_c},r=nonceXYZ,p=").as_bytes()),
            "{}",
            String::from_utf8_lossy(&fin)
        );
        // An empty authzid is no authzid.
        let mut m = ScramClient::with_nonce(
            ScramHash::Sha256,
            Credentials::master("", "admin", "pw"),
            &cache,
            "n",
        )
        .unwrap();
        assert_eq!(m.initial_response().unwrap(), b"n,,n=admin,r=n".to_vec());
        assert!(ScramClient::new(ScramHash::Sha1, Credentials::new("", "p"), &cache).is_err());
    }

    #[test]
    fn without_sasl_ir() {
        let cache = ScramCache::default();
        let mut m = ScramClient::with_nonce(
            ScramHash::Sha1,
            Credentials::new("user", "pencil"),
            &cache,
            SHA1_NONCE,
        )
        .unwrap();
        // Caller never used initial_response: the empty challenge gets client-first.
        assert_eq!(
            m.step(b"").unwrap(),
            b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL".to_vec()
        );
        assert_eq!(
            m.step(SHA1_SERVER_FIRST.as_bytes()).unwrap(),
            SHA1_CLIENT_FINAL.as_bytes()
        );
        // Caller took initial_response but waited for "+": once more, then an error.
        let mut m = ScramClient::with_nonce(
            ScramHash::Sha1,
            Credentials::new("user", "pencil"),
            &cache,
            SHA1_NONCE,
        )
        .unwrap();
        let first = m.initial_response().unwrap();
        assert_eq!(m.step(b"").unwrap(), first);
        assert!(m.step(b"").is_err());
        // Non-empty challenge before anything was sent.
        let mut m = ScramClient::new(ScramHash::Sha1, Credentials::new("u", "p"), &cache).unwrap();
        assert!(matches!(
            m.step(b"r=x,s=QQ==,i=1"),
            Err(SaslError::UnexpectedChallenge { .. })
        ));
    }

    #[test]
    fn random_nonces_differ() {
        let cache = ScramCache::default();
        let nonce = |m: &mut ScramClient| {
            let first = String::from_utf8(m.initial_response().unwrap()).unwrap();
            first.rsplit_once(",r=").unwrap().1.to_owned()
        };
        let mut a =
            ScramClient::new(ScramHash::Sha256, Credentials::new("u", "p"), &cache).unwrap();
        let mut b =
            ScramClient::new(ScramHash::Sha256, Credentials::new("u", "p"), &cache).unwrap();
        let (na, nb) = (nonce(&mut a), nonce(&mut b));
        assert_ne!(na, nb);
        assert_eq!(na.len(), 32);
        assert!(is_printable_nonce(&na));
    }

    #[test]
    fn cache_is_bounded_fifo() {
        let cache = ScramCache::with_capacity(3);
        let salt = |i: u8| vec![i; 4];
        for i in 0..5u8 {
            cache.keys(ScramHash::Sha1, "pw", &salt(i), 2);
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.misses(), 5);
        cache.keys(ScramHash::Sha1, "pw", &salt(4), 2);
        assert_eq!(cache.hits(), 1);
        cache.keys(ScramHash::Sha1, "pw", &salt(0), 2); // evicted earlier
        assert_eq!(cache.misses(), 6);
        // Different hash, password or iterations are different entries.
        cache.keys(ScramHash::Sha256, "pw", &salt(0), 2);
        cache.keys(ScramHash::Sha1, "pw2", &salt(0), 2);
        cache.keys(ScramHash::Sha1, "pw", &salt(0), 3);
        assert_eq!(cache.misses(), 9);
        let clone = cache.clone();
        clone.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn cache_is_send_sync() {
        fn check<T: Send + Sync + Clone>() {}
        check::<ScramCache>();
        fn send<T: Send>() {}
        send::<ScramClient>();
    }
}
