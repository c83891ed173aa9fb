//! HMAC-SHA256 (RFC 2104, through the `hmac` crate) and the purpose-bound keys derived
//! from the token signing secret. One configured secret serves every replica; deriving a
//! separate key per purpose means a value signed for one use (a list cursor) can never
//! pass as another (a request fingerprint, a token).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes a key of any length (a long one is hashed first), so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of every length");
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Equality that takes the same time wherever the first difference is, so a forger
/// cannot learn a tag byte by byte from response times.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Keys derived from the signing secret, one per purpose.
#[derive(Clone)]
pub struct DerivedKeys {
    /// Signs keyset cursors of `GET /api/v1/tasks`.
    pub cursor: [u8; 32],
    /// Keys the fingerprint of an idempotent request body; keyed (not a bare SHA-256)
    /// because a registration body contains a password, and a leaked table must not
    /// allow guessing it offline.
    pub request_fingerprint: [u8; 32],
}

impl DerivedKeys {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            cursor: hmac_sha256(secret, &[b"taskapi/list-cursor/v1"]),
            request_fingerprint: hmac_sha256(secret, &[b"taskapi/idempotency-fingerprint/v1"]),
        }
    }
}

impl std::fmt::Debug for DerivedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DerivedKeys(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_4231_test_case_2() {
        let tag = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn long_keys_are_hashed_first() {
        // RFC 4231 test case 6: a 131-byte key.
        let key = [0xaa_u8; 131];
        let tag = hmac_sha256(
            &key,
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex::encode(tag),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn purposes_get_different_keys() {
        let keys = DerivedKeys::new(b"secret");
        assert_ne!(keys.cursor, keys.request_fingerprint);
        assert!(constant_time_eq(&keys.cursor, &keys.cursor));
        assert!(!constant_time_eq(&keys.cursor, &keys.request_fingerprint));
    }
}
