//! Client SASL mechanisms against an independent in-test SCRAM server, plus fuzzing of
//! the server messages the client parses.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use imaptest::sasl::{Credentials, MECHANISMS, Mechanism, SaslError, ScramCache, mechanism};
use proptest::prelude::*;
use sha1::Sha1;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug)]
enum Hash {
    Sha1,
    Sha256,
}

impl Hash {
    fn name(self) -> &'static str {
        match self {
            Hash::Sha1 => "SCRAM-SHA-1",
            Hash::Sha256 => "SCRAM-SHA-256",
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => {
                let mut m = <Hmac<Sha1> as KeyInit>::new_from_slice(key).unwrap();
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Hash::Sha256 => {
                let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn h(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(data).to_vec(),
            Hash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    /// RFC 5802 Hi(), written out rather than via the pbkdf2 crate.
    fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut u = self.hmac(password, &[salt, &1u32.to_be_bytes()].concat());
        let mut out = u.clone();
        for _ in 1..iterations {
            u = self.hmac(password, &u);
            for (o, x) in out.iter_mut().zip(&u) {
                *o ^= x;
            }
        }
        out
    }
}

fn unescape(name: &str) -> String {
    name.replace("=2C", ",").replace("=3D", "=")
}

/// A minimal SCRAM server with a fixed user database of one password.
struct Server {
    hash: Hash,
    password: String,
    salt: Vec<u8>,
    iterations: u32,
    /// (authzid, authcid) the client sent.
    identities: Option<(Option<String>, String)>,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl Server {
    fn new(hash: Hash, password: &str, salt: &[u8], iterations: u32) -> Self {
        Server {
            hash,
            password: password.into(),
            salt: salt.into(),
            iterations,
            identities: None,
            client_first_bare: String::new(),
            server_first: String::new(),
            nonce: String::new(),
        }
    }

    fn first(&mut self, client_first: &[u8]) -> String {
        let msg = std::str::from_utf8(client_first).unwrap();
        let rest = msg.strip_prefix("n,").expect("no channel binding flag");
        let (authzid, bare) = rest.split_once(',').unwrap();
        let authzid = authzid.strip_prefix("a=").map(unescape);
        let (user, nonce) = bare.split_once(",r=").unwrap();
        let user = unescape(user.strip_prefix("n=").unwrap());
        self.identities = Some((authzid, user));
        self.client_first_bare = bare.to_owned();
        self.nonce = format!("{nonce}srvNONCE%$)");
        self.server_first = format!(
            "r={},s={},i={}",
            self.nonce,
            B64.encode(&self.salt),
            self.iterations
        );
        self.server_first.clone()
    }

    /// server-final: `v=` when the proof is right, `e=invalid-proof` otherwise.
    fn last(&self, client_final: &[u8], gs2_header: &str) -> String {
        let msg = std::str::from_utf8(client_final).unwrap();
        let (without_proof, proof) = msg.rsplit_once(",p=").unwrap();
        assert_eq!(
            without_proof,
            format!("c={},r={}", B64.encode(gs2_header), self.nonce)
        );
        let proof = B64.decode(proof).unwrap();
        let salted = self
            .hash
            .hi(self.password.as_bytes(), &self.salt, self.iterations);
        let client_key = self.hash.hmac(&salted, b"Client Key");
        let stored_key = self.hash.h(&client_key);
        let server_key = self.hash.hmac(&salted, b"Server Key");
        let auth = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let client_signature = self.hash.hmac(&stored_key, auth.as_bytes());
        let recovered: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        if self.hash.h(&recovered) != stored_key {
            return "e=invalid-proof".into();
        }
        format!(
            "v={}",
            B64.encode(self.hash.hmac(&server_key, auth.as_bytes()))
        )
    }
}

/// Runs a full exchange; returns the client's verdict on the server-final message.
fn exchange(m: &mut dyn Mechanism, server: &mut Server, gs2_header: &str) -> Result<(), SaslError> {
    let first = m.initial_response().expect("SCRAM has an initial response");
    let server_first = server.first(&first);
    let client_final = m.step(server_first.as_bytes())?;
    let server_final = server.last(&client_final, gs2_header);
    let empty = m.step(server_final.as_bytes())?;
    assert!(empty.is_empty());
    m.finish()
}

#[test]
fn scram_full_exchanges() {
    let cache = ScramCache::default();
    for hash in [Hash::Sha1, Hash::Sha256] {
        let mut server = Server::new(hash, "p@ss,w=rd", b"saltsalt", 64);
        let mut m = mechanism(
            &hash.name().to_lowercase(),
            Credentials::new("bob,=x", "p@ss,w=rd"),
            &cache,
        )
        .unwrap();
        assert_eq!(m.name(), hash.name());
        exchange(m.as_mut(), &mut server, "n,,").unwrap();
        assert_eq!(server.identities, Some((None, "bob,=x".to_owned())));
    }
    assert_eq!((cache.misses(), cache.hits(), cache.len()), (2, 0, 2));
}

#[test]
fn scram_master_user() {
    let cache = ScramCache::default();
    let mut server = Server::new(Hash::Sha256, "masterpw", b"NaCl", 32);
    let mut m = mechanism(
        "SCRAM-SHA-256",
        Credentials::master("user=1,a", "admin", "masterpw"),
        &cache,
    )
    .unwrap();
    exchange(m.as_mut(), &mut server, "n,a=user=3D1=2Ca,").unwrap();
    assert_eq!(
        server.identities,
        Some((Some("user=1,a".to_owned()), "admin".to_owned()))
    );
}

#[test]
fn scram_wrong_password_is_refused_by_server() {
    let cache = ScramCache::default();
    let mut server = Server::new(Hash::Sha1, "right", b"salt", 16);
    let mut m = mechanism("SCRAM-SHA-1", Credentials::new("u", "wrong"), &cache).unwrap();
    assert_eq!(
        exchange(m.as_mut(), &mut server, "n,,"),
        Err(SaslError::ServerError("invalid-proof".into()))
    );
    assert!(m.finish().is_err());
}

#[test]
fn scram_impostor_server_is_detected() {
    // A server that accepts any proof but does not know the password: its signature
    // (computed from a different password) must not verify.
    let cache = ScramCache::default();
    let mut server = Server::new(Hash::Sha256, "impostor", b"salt", 16);
    let mut m = mechanism("SCRAM-SHA-256", Credentials::new("u", "real"), &cache).unwrap();
    let first = m.initial_response().unwrap();
    let server_first = server.first(&first);
    m.step(server_first.as_bytes()).unwrap();
    let forged = format!("v={}", B64.encode([7u8; 32]));
    assert_eq!(
        m.step(forged.as_bytes()),
        Err(SaslError::ServerSignatureMismatch)
    );
    assert!(m.finish().is_err());
}

#[test]
fn scram_ok_without_server_final_fails_finish() {
    let cache = ScramCache::default();
    let mut server = Server::new(Hash::Sha256, "pw", b"salt", 16);
    let mut m = mechanism("SCRAM-SHA-256", Credentials::new("u", "pw"), &cache).unwrap();
    let first = m.initial_response().unwrap();
    m.step(server.first(&first).as_bytes()).unwrap();
    // The server says OK before sending v=.
    assert_eq!(
        m.finish(),
        Err(SaslError::ServerNotAuthenticated("SCRAM-SHA-256"))
    );
    // Or even before server-first.
    let mut m = mechanism("SCRAM-SHA-1", Credentials::new("u", "pw"), &cache).unwrap();
    m.initial_response();
    assert!(m.finish().is_err());
}

#[test]
fn scram_cache_reused_across_logins_and_threads() {
    let cache = ScramCache::default();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                for i in 0..5 {
                    // Two users: "u0" and "u1", with their own salts.
                    let user = (t + i) % 2;
                    let pw = format!("pw{user}");
                    let salt = format!("salt{user}");
                    let mut server = Server::new(Hash::Sha256, &pw, salt.as_bytes(), 128);
                    let mut m = mechanism(
                        "SCRAM-SHA-256",
                        Credentials::new(format!("u{user}"), pw.clone()),
                        &cache,
                    )
                    .unwrap();
                    exchange(m.as_mut(), &mut server, "n,,").unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.hits() + cache.misses(), 20);
    assert!(cache.misses() >= 2 && cache.hits() >= 10, "{cache:?}");

    // Changed salt or iteration count: a new derivation, still correct.
    let misses = cache.misses();
    let mut server = Server::new(Hash::Sha256, "pw0", b"salt0", 129);
    let mut m = mechanism("SCRAM-SHA-256", Credentials::new("u0", "pw0"), &cache).unwrap();
    exchange(m.as_mut(), &mut server, "n,,").unwrap();
    assert_eq!(cache.misses(), misses + 1);
}

#[test]
fn plain_and_login() {
    let cache = ScramCache::default();
    let mut m = mechanism("plain", Credentials::master("user", "admin", "pw"), &cache).unwrap();
    assert_eq!(m.initial_response().unwrap(), b"user\0admin\0pw");
    m.finish().unwrap();

    let mut m = mechanism("Login", Credentials::new("user", "pw"), &cache).unwrap();
    assert_eq!(m.initial_response(), None);
    assert_eq!(m.step(b"Username:").unwrap(), b"user");
    assert_eq!(m.step(b"Password:").unwrap(), b"pw");
    assert!(m.step(b"Again?").is_err());
    m.finish().unwrap();
}

#[test]
fn all_mechanisms_listed_and_unknown_rejected() {
    let cache = ScramCache::default();
    for name in MECHANISMS {
        assert_eq!(
            mechanism(name, Credentials::new("u", "p"), &cache)
                .unwrap()
                .name(),
            *name
        );
    }
    let err = mechanism("GSSAPI", Credentials::new("u", "p"), &cache)
        .err()
        .unwrap();
    assert_eq!(err, SaslError::Unsupported("GSSAPI".into()));
    assert!(err.to_string().contains("GSSAPI"));
}

/// Starts a SCRAM exchange; returns the mechanism and the client nonce.
fn started(name: &str, cache: &ScramCache) -> (Box<dyn Mechanism>, String) {
    let mut m = mechanism(name, Credentials::new("user", "pencil"), cache).unwrap();
    let first = String::from_utf8(m.initial_response().unwrap()).unwrap();
    let nonce = first.rsplit_once(",r=").unwrap().1.to_owned();
    (m, nonce)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes as server-first: an error, never a panic.
    #[test]
    fn arbitrary_server_first(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let cache = ScramCache::with_capacity(0);
        let (mut m, _) = started("SCRAM-SHA-256", &cache);
        if !bytes.is_empty() {
            prop_assert!(m.step(&bytes).is_err());
        }
        prop_assert!(m.finish().is_err());
    }

    /// Server-first built from a valid nonce and fuzzed salt/iteration/extension
    /// parts: may succeed or fail, never panics, and the iteration bound holds.
    #[test]
    fn structured_server_first(
        suffix in "[!-+--~]{0,8}",
        salt in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(|s| B64.encode(s)),
            "[ -+--~]{0,12}",
        ],
        // Small counts, counts above the limit, and non-numbers (never a huge PBKDF2).
        count in prop_oneof!["0*[0-9]{0,3}", "[2-9][0-9]{6,25}", "[ -/:-~][ -~]{0,5}"],
        tail in "(,[ -~]{0,10}){0,2}",
        sha1 in any::<bool>(),
    ) {
        let cache = ScramCache::with_capacity(0);
        let (mut m, nonce) = started(if sha1 { "SCRAM-SHA-1" } else { "SCRAM-SHA-256" }, &cache);
        let msg = format!("r={nonce}{suffix},s={salt},i={count}{tail}");
        match m.step(msg.as_bytes()) {
            Ok(client_final) => {
                prop_assert!(!suffix.is_empty());
                let digits = count.trim_start_matches('0');
                prop_assert!(!digits.is_empty() && digits.len() <= 3);
                let text = String::from_utf8(client_final).unwrap();
                let expected_prefix = format!("c=biws,r={nonce}{suffix},p=");
                prop_assert!(text.starts_with(&expected_prefix));
                // Any server-final but the right one fails.
                prop_assert!(m.step(b"v=AAAA").is_err());
            }
            Err(e) => {
                prop_assert!(!matches!(e, SaslError::Unsupported(_) | SaslError::ServerSignatureMismatch), "{e:?}");
            }
        }
        prop_assert!(m.finish().is_err());
    }

    /// Arbitrary server-final after a valid server-first: never a panic, never success.
    #[test]
    fn arbitrary_server_final(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        let cache = ScramCache::default();
        let (mut m, nonce) = started("SCRAM-SHA-1", &cache);
        m.step(format!("r={nonce}x,s=c2FsdA==,i=8").as_bytes()).unwrap();
        prop_assert!(m.step(&bytes).is_err());
        prop_assert!(m.finish().is_err());
    }
}
