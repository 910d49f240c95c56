//! Service-to-service tokens: every internal call carries a signed token
//! whose audience is the service called, and every service refuses a call
//! without a valid one for itself (`UNAUTHENTICATED`, or 401 at the
//! ledger). Tokens are JWTs (HS256: HMAC-SHA256, RFC 7519) with `iss`,
//! `aud`, `iat` and `exp`, minted by the caller and cached until shortly
//! before they expire. The key is 32 random bytes made at run time by the
//! launcher (never committed); health checks stay open for probes.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use shared_domain::FastMap;

type HmacSha256 = Hmac<Sha256>;

/// How long a minted token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// Clock skew tolerated when checking `exp` and `iat`.
pub const LEEWAY: Duration = Duration::from_secs(5);

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `authorization: Bearer …`.
    #[error("missing service token")]
    Missing,
    /// Not a well-formed HS256 JWT.
    #[error("malformed service token")]
    Malformed,
    /// The signature does not match.
    #[error("bad signature")]
    Signature,
    /// For another service.
    #[error("token is for {0}, not this service")]
    Audience(String),
    /// Expired or issued in the future.
    #[error("token expired or not yet valid")]
    Expired,
}

/// The shared signing key.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// Reads a key written by [`TokenKey::to_hex`].
    pub fn from_hex(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        anyhow::ensure!(text.len() == 64, "a token key is 64 hex digits");
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)?;
        }
        Ok(Self(key))
    }

    /// Hex, for a key file.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts a key of any length; 32 bytes cannot fail.
        HmacSha256::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    iat: u64,
    exp: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Mints (and caches) tokens from one service for others.
pub struct Minter {
    key: TokenKey,
    issuer: String,
    cache: Mutex<FastMap<String, (Arc<str>, u64)>>,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Minter")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Minter {
    /// Tokens issued by `issuer`.
    pub fn new(key: TokenKey, issuer: &str) -> Self {
        Self {
            key,
            issuer: issuer.to_owned(),
            cache: Mutex::default(),
        }
    }

    /// A valid token for `audience`, reused until a minute before expiry.
    pub fn token_for(&self, audience: &str) -> Arc<str> {
        let now = now_secs();
        if let Some((token, exp)) = self.cache.lock().get(audience)
            && *exp > now + 60
        {
            return token.clone();
        }
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: audience.to_owned(),
            iat: now,
            exp: now + TOKEN_LIFETIME.as_secs(),
        };
        let token: Arc<str> = sign(&self.key, &claims).into();
        self.cache
            .lock()
            .insert(audience.to_owned(), (token.clone(), claims.exp));
        token
    }
}

fn sign(key: &TokenKey, claims: &Claims) -> String {
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = key.mac();
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// Checks tokens presented to one service.
pub struct Verifier {
    key: TokenKey,
    audience: String,
}

impl Verifier {
    /// Accepts tokens for `audience` signed with `key`.
    pub fn new(key: TokenKey, audience: &str) -> Self {
        Self {
            key,
            audience: audience.to_owned(),
        }
    }

    /// Checks an `authorization` header value; the issuer on success.
    pub fn verify_header(&self, header: Option<&str>) -> Result<String, AuthError> {
        let token = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or(AuthError::Missing)?;
        self.verify(token)
    }

    /// Checks a token; the issuer on success.
    pub fn verify(&self, token: &str) -> Result<String, AuthError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let header_json = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| AuthError::Malformed)?;
        let header_value: serde_json::Value =
            serde_json::from_slice(&header_json).map_err(|_| AuthError::Malformed)?;
        if header_value["alg"] != "HS256" {
            return Err(AuthError::Malformed);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| AuthError::Malformed)?;
        let mut mac = self.key.mac();
        mac.update(header.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&signature)
            .map_err(|_| AuthError::Signature)?;
        let claims: Claims = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(payload)
                .map_err(|_| AuthError::Malformed)?,
        )
        .map_err(|_| AuthError::Malformed)?;
        if claims.aud != self.audience {
            return Err(AuthError::Audience(claims.aud));
        }
        let now = now_secs();
        if claims.exp + LEEWAY.as_secs() < now || claims.iat > now + LEEWAY.as_secs() {
            return Err(AuthError::Expired);
        }
        Ok(claims.iss)
    }
}

/// Paths a probe or a tool may call without a token.
fn open_path(path: &str) -> bool {
    path == "/healthz"
        || path == "/metrics"
        || path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.")
}

/// Refuses requests without a valid token for this service: tower-http's
/// request validation with [`TokenCheck`]. `R` is the server's response
/// body (tonic's for a gRPC server, axum's for the HTTP/JSON one).
pub fn layer<R: Default>(
    verifier: Arc<Verifier>,
    grpc: bool,
) -> tower_http::validate_request::ValidateRequestHeaderLayer<TokenCheck<R>> {
    tower_http::validate_request::ValidateRequestHeaderLayer::custom(TokenCheck {
        verifier,
        grpc,
        body: std::marker::PhantomData,
    })
}

/// Checks a request's service token (the open paths, health and metrics,
/// need none); a refusal is `UNAUTHENTICATED` for gRPC and 401 for
/// HTTP/JSON, and is counted.
pub struct TokenCheck<R> {
    verifier: Arc<Verifier>,
    grpc: bool,
    body: std::marker::PhantomData<fn() -> R>,
}

impl<R> Clone for TokenCheck<R> {
    fn clone(&self) -> Self {
        Self {
            verifier: self.verifier.clone(),
            grpc: self.grpc,
            body: std::marker::PhantomData,
        }
    }
}

impl<B, R: Default> tower_http::validate_request::ValidateRequest<B> for TokenCheck<R> {
    type ResponseBody = R;

    fn validate(&mut self, request: &mut http::Request<B>) -> Result<(), http::Response<R>> {
        if open_path(request.uri().path()) {
            return Ok(());
        }
        let header = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Err(e) = self.verifier.verify_header(header) else {
            return Ok(());
        };
        metrics::counter!("service_token_refused_total").increment(1);
        let response = if self.grpc {
            tonic::Status::unauthenticated(e.to_string()).into_http()
        } else {
            let mut r = http::Response::new(());
            *r.status_mut() = http::StatusCode::UNAUTHORIZED;
            r
        };
        // A trailers-only gRPC answer or an empty 401 carries everything
        // in its head.
        let (parts, _) = response.into_parts();
        Err(http::Response::from_parts(parts, R::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_verifies_only_for_its_audience_and_key() {
        let key = TokenKey::generate();
        let minter = Minter::new(key.clone(), "gateway");
        let token = minter.token_for("accounts");
        assert_eq!(
            Verifier::new(key.clone(), "accounts").verify(&token),
            Ok("gateway".into())
        );
        assert_eq!(minter.token_for("accounts"), token, "cached");
        assert!(matches!(
            Verifier::new(key.clone(), "chat").verify(&token),
            Err(AuthError::Audience(_))
        ));
        assert_eq!(
            Verifier::new(TokenKey::generate(), "accounts").verify(&token),
            Err(AuthError::Signature)
        );
        let v = Verifier::new(key.clone(), "accounts");
        assert_eq!(v.verify_header(None), Err(AuthError::Missing));
        assert_eq!(
            v.verify_header(Some(&format!("Basic {token}"))),
            Err(AuthError::Missing)
        );
        assert_eq!(
            v.verify_header(Some(&format!("Bearer {token}"))),
            Ok("gateway".into())
        );
        for junk in ["", "a.b", "a.b.c", "a.b.c.d"] {
            assert_eq!(v.verify(junk), Err(AuthError::Malformed), "{junk}");
        }
        // A payload changed after signing fails the signature.
        let parts: Vec<&str> = token.split('.').collect();
        let forged_claims = Claims {
            iss: "gateway".into(),
            aud: "accounts".into(),
            iat: now_secs(),
            exp: now_secs() + 10_000,
        };
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).expect("json")),
            parts[2]
        );
        assert_eq!(v.verify(&forged), Err(AuthError::Signature));
        // Expired.
        let old = sign(
            &key,
            &Claims {
                iss: "x".into(),
                aud: "accounts".into(),
                iat: 0,
                exp: 1,
            },
        );
        assert_eq!(v.verify(&old), Err(AuthError::Expired));
        // The key survives a round trip through its file form.
        let again = TokenKey::from_hex(&key.to_hex()).expect("hex");
        assert_eq!(
            Verifier::new(again, "accounts").verify(&token),
            Ok("gateway".into())
        );
    }
}
