//! Development sign-in for the local stack: an RSA key of its own (made once, kept in the
//! data directory), its certificate published the way Google publishes Firebase's
//! (`GET /_local/auth/certs`: `{kid: PEM}`), and ID tokens minted with Firebase's claims
//! (`POST /_local/auth/token`). The stack verifies them with the production verifier
//! (`shared::auth::firebase`) pointed at that certificate URL, so the playground and any
//! local client exercise the real verification path; only a loopback stack mints.

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{Value, json};
use std::path::Path;

/// The Firebase project id local tokens are issued for.
pub const DEV_PROJECT: &str = "catalyst-local";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const KEY_FILE: &str = "dev-auth-key.pem";
pub const TOKEN_LIFETIME_S: i64 = 3600;

pub struct DevIssuer {
    kid: String,
    cert_pem: String,
    pair: ring::signature::RsaKeyPair,
}

impl DevIssuer {
    /// The key in `data_dir` (made on first use, readable by the owner only).
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<DevIssuer> {
        use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
        let path = data_dir.join(KEY_FILE);
        let private = match std::fs::read_to_string(&path) {
            Ok(pem) => rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
                .with_context(|| format!("{} is not a PKCS#8 RSA key; delete it to make a new one", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).context("RSA key generation")?;
                let pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).context("PKCS#8 encoding")?;
                std::fs::create_dir_all(data_dir)?;
                write_private(&path, pem.as_bytes())?;
                key
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let der = private.to_pkcs8_der().context("PKCS#8 encoding")?;
        let pem = private.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).context("PKCS#8 encoding")?;
        let pair = ring::signature::RsaKeyPair::from_pkcs8(der.as_bytes())
            .map_err(|e| anyhow::anyhow!("the development key is not usable for RS256: {e}"))?;
        let signer = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
            .context("the development key is not usable for a certificate")?;
        let cert = rcgen::CertificateParams::new(vec!["catalyst-local.invalid".to_string()])
            .context("certificate parameters")?
            .self_signed(&signer)
            .context("self-signing the development certificate")?;
        let kid = {
            use sha2::{Digest, Sha256};
            hex::encode(&Sha256::digest(pair.public().as_ref())[..10])
        };
        Ok(DevIssuer { kid, cert_pem: cert.pem(), pair })
    }

    /// Google's x509 document shape.
    pub fn certs(&self) -> Value {
        json!({ self.kid.clone(): self.cert_pem })
    }

    /// A Firebase-shaped ID token for `uid`, valid for an hour.
    pub fn mint(&self, uid: &str, email: Option<&str>) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let email = email.map(str::to_string).unwrap_or_else(|| format!("{uid}@catalyst.local"));
        let header = json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"});
        let claims = json!({
            "iss": format!("https://securetoken.google.com/{DEV_PROJECT}"),
            "aud": DEV_PROJECT,
            "auth_time": now,
            "user_id": uid,
            "sub": uid,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_S,
            "email": email,
            "email_verified": true,
            "firebase": {"identities": {"email": [email]}, "sign_in_provider": "password"}
        });
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let mut sig = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), input.as_bytes(), &mut sig)
            .map_err(|_| anyhow::anyhow!("signing the development token failed"))?;
        Ok(format!("{input}.{}", B64.encode(sig)))
    }
}

/// A uid as Firebase makes them: letters, digits, `-` and `_`, at most 128.
pub fn valid_uid(uid: &str) -> bool {
    !uid.is_empty() && uid.len() <= 128 && uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalyst_shared::auth::firebase::FirebaseVerifier;

    #[tokio::test]
    async fn minted_tokens_pass_the_production_verifier_and_the_key_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = DevIssuer::load_or_create(dir.path()).unwrap();
        let certs = issuer.certs().to_string();
        // The certificate endpoint, as the stack serves it.
        let app = axum::Router::new().route(
            "/certs",
            axum::routing::get(move || {
                let c = certs.clone();
                async move { ([("content-type", "application/json"), ("cache-control", "max-age=3600")], c) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = url::Url::parse(&format!("http://{addr}/certs")).unwrap();
        let verifier = FirebaseVerifier::new(DEV_PROJECT, url).unwrap();
        let claims = verifier.verify(&issuer.mint("ada", None).unwrap()).await.unwrap();
        assert_eq!(claims.uid, "ada");

        // The same key after a restart: tokens minted before still verify.
        let again = DevIssuer::load_or_create(dir.path()).unwrap();
        assert_eq!(again.certs(), issuer.certs());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A token with one bit of its signature changed is refused by the signature check.
        let token = issuer.mint("ada", None).unwrap();
        let (signed, sig) = token.rsplit_once('.').unwrap();
        let mut sig = B64.decode(sig).unwrap();
        sig[10] ^= 1;
        let err = verifier.verify(&format!("{signed}.{}", B64.encode(sig))).await.unwrap_err();
        assert!(err.message().contains("invalid signature"), "{}", err.message());
        assert!(valid_uid("dev_user-1") && !valid_uid("a/b") && !valid_uid(""));
    }
}
