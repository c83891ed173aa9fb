//! HS256 access tokens. The algorithm is pinned, and every registered claim is required.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::mac::DerivedKeys;
use crate::config::AuthSettings;
use crate::entities::user::Role;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub iat: u64,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
    pub jti: Uuid,
    /// The user's token version when issued; a bump (logout-all, password or role
    /// change) makes every older token fail.
    pub ver: i32,
}

/// What the auth guard needs from a verified access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessClaims {
    pub sub: Uuid,
    pub ver: i32,
    pub exp: u64,
}

/// Bound on remembered tokens: at most a few MB (only tokens this service signed and that
/// verified get in, so their size is ours, not a client's).
const VERIFIED_CAPACITY: u64 = 10_000;
/// How long a verified token is remembered; its own `exp` is still checked on every use.
const VERIFIED_TTL: Duration = Duration::from_secs(60);

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    pub ttl_secs: u64,
    /// Keys for other purposes, derived from the same secret (see `auth::mac`).
    pub derived: DerivedKeys,
    /// Access tokens that passed `verify`, by their exact text. Verifying (base64, two
    /// JSON parses, HMAC key set-up and MAC) was the largest single cost of an
    /// authenticated request, repeated for the same token on every request. A token is
    /// only ever looked up by its exact bytes, which were verified under this process's
    /// key (fixed for its life); expiry is checked again on every hit. Revocation is not
    /// this cache's business: the guard checks the account's token version every time.
    verified: moka::sync::Cache<String, AccessClaims>,
}

impl JwtKeys {
    pub fn new(secret: &[u8], settings: &AuthSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = false;
        validation.leeway = settings.clock_skew_secs;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl_secs: settings.access_token_ttl_secs,
            derived: DerivedKeys::new(secret),
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .time_to_live(VERIFIED_TTL)
                .build(),
        }
    }

    pub fn issue(&self, user_id: Uuid, role: Role, token_version: i32) -> anyhow::Result<String> {
        let now = unix_now();
        let claims = Claims {
            sub: user_id,
            role,
            iat: now,
            exp: now + self.ttl_secs,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::now_v7(),
            ver: token_version,
        };
        Ok(encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        decode::<Claims>(token, &self.decoding, &self.validation).map(|data| data.claims)
    }

    /// `verify`, remembering tokens that passed (see `verified`): the same answer for
    /// every token, at a hash lookup instead of a full verification when it was seen.
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, jsonwebtoken::errors::Error> {
        if let Some(hit) = self.verified.get(token)
            && self.unexpired(hit.exp, unix_now())
        {
            return Ok(hit);
        }
        // Unknown or expired: full verification, which also reports the expiry.
        let claims = self.verify(token)?;
        let access = AccessClaims {
            sub: claims.sub,
            ver: claims.ver,
            exp: claims.exp,
        };
        self.verified.insert(token.to_owned(), access);
        Ok(access)
    }

    /// jsonwebtoken's own expiry rule: expired once `exp < now - leeway`.
    fn unexpired(&self, exp: u64, now: u64) -> bool {
        exp >= now.saturating_sub(self.validation.leeway)
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn keys() -> JwtKeys {
        JwtKeys::new(&[7u8; 32], &Settings::default().auth)
    }

    #[test]
    fn round_trip() {
        let keys = keys();
        let id = Uuid::now_v7();
        let token = keys.issue(id, Role::User, 3).expect("issue");
        let claims = keys.verify(&token).expect("valid");
        assert_eq!(claims.sub, id);
        assert_eq!(claims.ver, 3);
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn alg_none_and_tampering_are_rejected() {
        let keys = keys();
        let token = keys.issue(Uuid::now_v7(), Role::User, 0).expect("issue");
        let mut parts: Vec<&str> = token.split('.').collect();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        parts[0] = &none_header;
        let unsigned = format!("{}.{}.", parts[0], parts[1]);
        assert!(keys.verify(&unsigned).is_err());

        let claims = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&serde_json::json!({"role": "admin"})).expect("json"));
        let tampered: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{}.{}", tampered[0], claims, tampered[2]);
        assert!(keys.verify(&forged).is_err());
    }

    #[test]
    fn remembered_tokens_get_the_same_answer() {
        let keys = keys();
        let id = Uuid::now_v7();
        let token = keys.issue(id, Role::User, 4).expect("issue");
        let first = keys.verify_access(&token).expect("valid");
        let again = keys.verify_access(&token).expect("still valid");
        assert_eq!(first, again);
        assert_eq!((first.sub, first.ver), (id, 4));
        // A remembered token does not vouch for a tampered copy of itself.
        let (signed, signature) = token.rsplit_once('.').expect("three parts");
        let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
        let forged = format!("{signed}.{flipped}{}", &signature[1..]);
        assert!(keys.verify_access(&forged).is_err());
        assert!(keys.verify_access("not-a-token").is_err());
    }

    #[test]
    fn expiry_rule_matches_jsonwebtoken() {
        let keys = keys();
        // leeway 5 s: exp 100 is still valid at 105, expired at 106.
        assert!(keys.unexpired(100, 105));
        assert!(!keys.unexpired(100, 106));
        assert!(keys.unexpired(100, 3));
    }

    #[test]
    fn other_secret_is_rejected() {
        let token = keys().issue(Uuid::now_v7(), Role::Admin, 0).expect("issue");
        let other = JwtKeys::new(&[8u8; 32], &Settings::default().auth);
        assert!(other.verify(&token).is_err());
    }
}
