//! Test fixtures shared by the integration tests and the benchmark: RSA keys with
//! self-signed x509 certificates made on the spot, Firebase-shaped ID tokens signed with
//! them, and a real certificate endpoint on 127.0.0.1 that counts its hits.
#![allow(dead_code)]

use axum::extract::State;
use axum::response::IntoResponse;
use base64::Engine as _;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub const PROJECT: &str = "catalyst-test";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An RSA-2048 signing key and the certificate Google would publish for it.
pub struct TestKey {
    pub kid: String,
    pub cert_pem: String,
    pair: ring::signature::RsaKeyPair,
}

impl TestKey {
    pub fn generate(kid: &str) -> TestKey {
        use rsa::pkcs8::EncodePrivateKey as _;
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key generation");
        let der = private.to_pkcs8_der().expect("PKCS#8 encoding");
        let pem = private.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).expect("PKCS#8 PEM");
        let pair = ring::signature::RsaKeyPair::from_pkcs8(der.as_bytes()).expect("ring accepts the key");
        let signer = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).expect("rcgen key");
        let cert = rcgen::CertificateParams::new(vec!["securetoken.system.gserviceaccount.com".to_string()])
            .expect("params")
            .self_signed(&signer)
            .expect("self-signed certificate");
        TestKey { kid: kid.to_string(), cert_pem: cert.pem(), pair }
    }

    /// A compact JWS over `header` and `claims`, signed RS256 with this key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let mut sig = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .expect("signing");
        format!("{signing_input}.{}", B64.encode(sig))
    }

    /// A valid Firebase ID token for `uid`.
    pub fn id_token(&self, uid: &str) -> String {
        self.sign(&self.header(), &claims(uid))
    }

    pub fn header(&self) -> Value {
        json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"})
    }
}

/// Keys are slow to generate, so each test binary makes three and shares them.
pub fn keys() -> &'static [TestKey; 3] {
    static KEYS: OnceLock<[TestKey; 3]> = OnceLock::new();
    KEYS.get_or_init(|| [TestKey::generate("kid-a"), TestKey::generate("kid-b"), TestKey::generate("kid-c")])
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims of a fresh Firebase ID token for `uid`, as Firebase Auth issues them.
pub fn claims(uid: &str) -> Value {
    let now = now();
    json!({
        "iss": format!("https://securetoken.google.com/{PROJECT}"),
        "aud": PROJECT,
        "auth_time": now - 60,
        "user_id": uid,
        "sub": uid,
        "iat": now - 30,
        "exp": now + 3600,
        "email": format!("{uid}@example.com"),
        "email_verified": true,
        "firebase": {"identities": {"email": [format!("{uid}@example.com")]}, "sign_in_provider": "password"}
    })
}

/// Google's x509 document: `{"kid": "-----BEGIN CERTIFICATE-----..."}`.
pub fn certs_json(keys: &[&TestKey]) -> String {
    let map: serde_json::Map<String, Value> = keys.iter().map(|k| (k.kid.clone(), json!(k.cert_pem))).collect();
    Value::Object(map).to_string()
}

struct Served {
    status: u16,
    body: String,
    cache_control: String,
    delay: Duration,
}

/// A certificate endpoint on 127.0.0.1 whose document, `Cache-Control` and latency the
/// test controls, and which counts every fetch.
pub struct CertServer {
    pub url: String,
    hits: Arc<AtomicUsize>,
    served: Arc<Mutex<Served>>,
}

impl CertServer {
    pub async fn start(keys: &[&TestKey], cache_control: &str) -> CertServer {
        let hits = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(Mutex::new(Served {
            status: 200,
            body: certs_json(keys),
            cache_control: cache_control.to_string(),
            delay: Duration::ZERO,
        }));
        let app = axum::Router::new()
            .route("/certs", axum::routing::get(serve_certs))
            .with_state((hits.clone(), served.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let url = format!("http://{}/certs", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        CertServer { url, hits, served }
    }

    pub fn serve(&self, keys: &[&TestKey], cache_control: &str) {
        let mut s = self.served.lock().unwrap();
        s.body = certs_json(keys);
        s.cache_control = cache_control.to_string();
        s.status = 200;
    }

    pub fn fail_with(&self, status: u16) {
        self.served.lock().unwrap().status = status;
    }

    pub fn set_delay(&self, delay: Duration) {
        self.served.lock().unwrap().delay = delay;
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

type ServerState = (Arc<AtomicUsize>, Arc<Mutex<Served>>);

async fn serve_certs(State((hits, served)): State<ServerState>) -> axum::response::Response {
    hits.fetch_add(1, Ordering::SeqCst);
    let (status, body, cache_control, delay) = {
        let s = served.lock().unwrap();
        (s.status, s.body.clone(), s.cache_control.clone(), s.delay)
    };
    tokio::time::sleep(delay).await;
    (
        axum::http::StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json; charset=UTF-8"), ("cache-control", cache_control.as_str())],
        body,
    )
        .into_response()
}
