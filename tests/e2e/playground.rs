//! The playground page on the local stack, with authentication on: development sign-in
//! through the Firebase verification path, and whole interviews driven in headless
//! Debian Chromium by `tests/browser/playground.mjs` (playwright-core from npm; both are
//! installed by `infra/test.sh`). Report screenshots land in `target/playground/`.

use catalyst_agent::testing::reply;
use catalyst_e2e::{Proc, bin, client, local_env, repo_root};
use catalyst_shared::testkit::openai::ScriptedOpenAi;
use std::collections::HashMap;
use std::time::Duration;

async fn stack(llm: &ScriptedOpenAi, dir: &std::path::Path) -> Proc {
    let port = catalyst_e2e::free_port();
    let mut env: HashMap<String, String> = local_env(dir);
    env.insert("CATALYST_AUTH".into(), "on".into());
    env.insert("PORT".into(), port.to_string());
    env.insert("LLM_PROVIDER".into(), "openai".into());
    env.insert("LLM_URL".into(), llm.url.clone());
    env.insert("LLM_MODEL".into(), "scripted-model".into());
    let addr = format!("127.0.0.1:{port}");
    Proc::start_http(&bin("catalyst"), &["serve", "--addr", &addr, "--poll-ms", "50"], env, dir).await
}

#[tokio::test]
async fn development_sign_in_goes_through_firebase_verification() {
    let llm = ScriptedOpenAi::start(reply).await;
    let dir = tempfile::tempdir().unwrap();
    let p = stack(&llm, dir.path()).await;
    let http = client();

    // Authentication is on: no token, no access.
    let r = http.get(p.url("/v1/auth/whoami")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // A development token is a Firebase ID token the stack's verifier accepts.
    let r = http.post(p.url("/_local/auth/token")).json(&serde_json::json!({"uid": "ada"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let token: serde_json::Value = r.json().await.unwrap();
    let id_token = token["id_token"].as_str().unwrap();
    assert_eq!(id_token.split('.').count(), 3);
    let r = http.get(p.url("/v1/auth/whoami")).bearer_auth(id_token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let who: serde_json::Value = r.json().await.unwrap();
    assert_eq!((who["principal"]["uid"].as_str(), who["principal"]["kind"].as_str()), (Some("ada"), Some("user")));
    // One whose signature does not match is not.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (signed, sig) = id_token.rsplit_once('.').unwrap();
    let mut sig = b64.decode(sig).unwrap();
    sig[0] ^= 1;
    let forged = format!("{signed}.{}", b64.encode(sig));
    let r = http.get(p.url("/v1/auth/whoami")).bearer_auth(forged).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("invalid signature"), "{body}");
    // Minting answers only to a loopback name (no DNS rebinding).
    let r = http
        .post(p.url("/_local/auth/token"))
        .header("host", "attacker.example")
        .json(&serde_json::json!({"uid": "ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http.post(p.url("/_local/auth/token")).json(&serde_json::json!({"uid": "a/b"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // The certificates are published as Google publishes Firebase's.
    let certs: serde_json::Value = http.get(p.url("/_local/auth/certs")).send().await.unwrap().json().await.unwrap();
    assert!(certs.as_object().unwrap().values().all(|c| c.as_str().unwrap().starts_with("-----BEGIN CERTIFICATE")));

    // The page and its files, self-contained.
    let r = http.get(p.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains("<script src=\"/playground/app.js\" defer></script>"));
    for outside in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!html.contains(outside), "nothing loaded from outside: {outside}");
    }
    for f in ["/playground/app.js", "/playground/style.css"] {
        assert_eq!(http.get(p.url(f)).send().await.unwrap().status(), 200, "{f}");
    }
}

#[tokio::test]
async fn a_typed_and_a_spoken_interview_in_headless_chromium() {
    let browser_dir = repo_root().join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists() && browser_dir.join("node_modules/playwright-core").exists(),
        "the browser test needs Debian's chromium and playwright-core: `apt-get install chromium` and \
         `npm ci --prefix tests/browser` (infra/test.sh does both)"
    );
    let llm = ScriptedOpenAi::start(reply).await;
    let dir = tempfile::tempdir().unwrap();
    let p = stack(&llm, dir.path()).await;
    let out = repo_root().join("target/playground");
    let resume = repo_root().join("functions/parse/testdata/in_two_page.docx");
    let audio = repo_root().join("functions/transcribe/testdata/jfk.wav");
    let url = p.url("/");
    let script = browser_dir.join("playground.mjs");
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .args(["--url", &url, "--resume"])
        .arg(&resume)
        .arg("--audio")
        .arg(&audio)
        .arg("--out")
        .arg(&out)
        .current_dir(&browser_dir)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), run).await.expect("the browser run took over 10 min");
    let output = output.expect("node runs");
    let text = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "browser run failed:\n{text}\n--- stack log ---\n{}", p.output());
    assert!(text.contains("playground: ok"), "{text}");
    for shot in ["report-typed.png", "report-spoken-phone.png"] {
        let png = std::fs::read(out.join(shot)).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{shot}");
    }
    println!("{text}screenshots in {}", out.display());
}
