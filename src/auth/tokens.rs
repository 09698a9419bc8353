//! Access tokens: minting and verification (DESIGN.md "Authentication").
//!
//! An access token is a JWT signed with Ed25519 (`alg` `EdDSA`, pinned), carrying the key id
//! (`kid`) of the keyring's token key that signed it, and the claims `iss`, `aud`, `sub` (user
//! id), `sid` (session id), `jti`, `iat` and `exp`, all required. It lives at most 15 minutes.
//! Verification proves only that the token is genuine and current; the caller must still load
//! the session row named by `sid` on every request (revocation lives there, not here).
//!
//! Time is always passed in (`now`), never read from the system clock here, so the service's
//! injectable clock governs expiry and tests can pin it.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroize;

use crate::auth::jwt_provider::{self, ProviderError};

/// Longest lifetime a [`TokenSigner`] will issue and a [`TokenVerifier`] will accept.
pub const MAX_TOKEN_LIFETIME: TimeDelta = TimeDelta::minutes(15);

/// Largest clock-skew allowance a [`TokenVerifier`] may be configured with.
pub const MAX_LEEWAY: TimeDelta = TimeDelta::seconds(30);

/// Tokens we mint are a few hundred bytes; anything far larger is refused before any base64 or
/// JSON work is spent on it.
const MAX_TOKEN_LEN: usize = 4096;

/// The one algorithm name we accept in a token header, compared as a string before anything
/// else so that `none`, `HS256` and friends never reach key lookup or jsonwebtoken.
const PINNED_ALG: &str = "EdDSA";

/// The claims of an access token as they go on the wire. Every field is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id (lowercase hyphenated UUID).
    pub sub: String,
    /// The session id (lowercase hyphenated UUID), naming the session row.
    pub sid: String,
    /// A fresh random UUID per token.
    pub jti: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
}

/// A configuration fault when building a [`TokenSigner`] or [`TokenVerifier`]; the service
/// must not start with one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenSetupError {
    #[error("access-token lifetime must be between 1 second and 15 minutes")]
    LifetimeOutOfRange,
    #[error("access-token verification leeway must be between 0 and 30 seconds")]
    LeewayOutOfRange,
    #[error("access-token issuer and audience must not be empty")]
    EmptyIssuerOrAudience,
    #[error("a token key id (kid) must not be empty")]
    EmptyKid,
    // Key ids are public (they travel in every token header), so naming them is safe.
    #[error("token key id {kid:?} appears more than once")]
    DuplicateKid { kid: String },
    #[error("no token verification keys were given")]
    NoVerificationKeys,
    #[error("token key {kid:?} is not a valid Ed25519 PKCS#8 v2 key")]
    InvalidKey { kid: String },
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// Minting failed. Never caused by client input: a 500 for the login/refresh request.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("access-token timestamps are out of range")]
    TimeOutOfRange,
    #[error("could not sign the access token")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

/// Signs access tokens with the keyring's active token key.
///
/// Holds private key material: no `Clone`, and a `Debug` that shows only the key id. Share it
/// behind an `Arc`.
pub struct TokenSigner {
    kid: String,
    // jsonwebtoken's key type zeroizes its bytes on drop and redacts its own Debug.
    key: EncodingKey,
    issuer: String,
    audience: String,
    lifetime: TimeDelta,
}

impl TokenSigner {
    /// `pkcs8` is the PKCS#8 v2 document of the active Ed25519 token key, `kid` its id in the
    /// keyring. `lifetime` must be within 1 s ..= [`MAX_TOKEN_LIFETIME`].
    pub fn new(
        kid: &str,
        pkcs8: &[u8],
        issuer: &str,
        audience: &str,
        lifetime: TimeDelta,
    ) -> Result<Self, TokenSetupError> {
        jwt_provider::install()?;
        if lifetime < TimeDelta::seconds(1) || lifetime > MAX_TOKEN_LIFETIME {
            return Err(TokenSetupError::LifetimeOutOfRange);
        }
        check_parties(issuer, audience)?;
        check_kid(kid)?;
        // Parse once here so a bad keyring entry stops start-up, not the first login.
        Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| TokenSetupError::InvalidKey { kid: kid.to_owned() })?;
        Ok(Self {
            kid: kid.to_owned(),
            key: EncodingKey::from_ed_der(pkcs8),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            lifetime,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn lifetime(&self) -> TimeDelta {
        self.lifetime
    }

    /// Issues a token for `user_id` in session `session_id`, valid from `now` (truncated to
    /// whole seconds, as JWT times are) for the configured lifetime.
    pub fn mint(&self, user_id: Uuid, session_id: Uuid, now: DateTime<Utc>) -> Result<MintedToken, MintError> {
        let iat = now.timestamp();
        if iat < 0 {
            return Err(MintError::TimeOutOfRange);
        }
        let exp = iat.checked_add(self.lifetime.num_seconds()).ok_or(MintError::TimeOutOfRange)?;
        let expires_at = DateTime::from_timestamp(exp, 0).ok_or(MintError::TimeOutOfRange)?;
        let jti = Uuid::new_v4();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.hyphenated().to_string(),
            sid: session_id.hyphenated().to_string(),
            jti: jti.hyphenated().to_string(),
            iat,
            exp,
        };
        let mut header = Header::new(Algorithm::EdDSA); // also sets `typ: "JWT"`
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.key).map_err(MintError::Signing)?;
        Ok(MintedToken { token, jti, expires_at })
    }
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("lifetime_secs", &self.lifetime.num_seconds())
            .field("key", &"[redacted]")
            .finish()
    }
}

/// A freshly minted access token. The token text is a bearer credential: no `Clone`, redacted
/// `Debug`, wiped on drop (the copy handed out with [`MintedToken::into_token`] is the
/// caller's to protect).
pub struct MintedToken {
    token: String,
    jti: Uuid,
    expires_at: DateTime<Utc>,
}

impl MintedToken {
    /// The compact JWT, for the response body.
    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn into_token(mut self) -> String {
        std::mem::take(&mut self.token)
    }

    pub fn jti(&self) -> Uuid {
        self.jti
    }

    /// The token's `exp` (whole seconds); `expires_in` is `expires_at - now`.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
}

impl Drop for MintedToken {
    fn drop(&mut self) {
        self.token.zeroize();
    }
}

impl fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintedToken")
            .field("token", &"[redacted]")
            .field("jti", &self.jti)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a token was refused. For logs and metrics only: clients always get the same 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenRejection {
    /// Not three base64url parts, bad JSON, a claim of the wrong type or not a UUID, too long,
    /// an unexpected `typ`, or inconsistent times (`exp` not after `iat`, lifetime > 15 min).
    Malformed,
    /// Header `alg` is anything but `EdDSA` (including `none` and absent).
    Algorithm,
    /// Header `kid` is absent or names no key we hold.
    UnknownKid,
    Signature,
    Expired,
    Issuer,
    Audience,
    MissingClaim,
    /// `iat` lies further in the future than the leeway allows.
    NotYetValid,
}

impl TokenRejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::UnknownKid => "unknown_kid",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::MissingClaim => "missing_claim",
            Self::NotYetValid => "not_yet_valid",
        }
    }
}

impl fmt::Display for TokenRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused access token: one opaque kind for clients (always 401), with the internal
/// [`TokenRejection`] for logs. Never carries any part of the token text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid access token")]
pub struct TokenError {
    reason: TokenRejection,
}

impl TokenError {
    pub fn reason(&self) -> TokenRejection {
        self.reason
    }
}

impl From<TokenRejection> for TokenError {
    fn from(reason: TokenRejection) -> Self {
        Self { reason }
    }
}

/// Proof that a token passed every check in [`TokenVerifier::verify`]; only the verifier can
/// construct one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClaims {
    user_id: Uuid,
    session_id: Uuid,
    jti: Uuid,
    kid: String,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl VerifiedClaims {
    pub fn user_id(&self) -> Uuid {
        self.user_id
    }

    pub fn session_id(&self) -> Uuid {
        self.session_id
    }

    pub fn jti(&self) -> Uuid {
        self.jti
    }

    /// The key that signed the token.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn issued_at(&self) -> DateTime<Utc> {
        self.issued_at
    }

    /// A verified-token cache must not keep the entry beyond this instant.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
}

/// Verifies access tokens against every token key in the keyring (old and new, so tokens keep
/// working across a key rotation until they expire).
pub struct TokenVerifier {
    keys: HashMap<String, DecodingKey>,
    issuer: String,
    audience: String,
    leeway: TimeDelta,
    validation: Validation,
}

impl TokenVerifier {
    /// `keys` are the keyring's token keys as (kid, PKCS#8 v2 document); only the public halves
    /// are kept. `leeway` (0 ..= [`MAX_LEEWAY`]) absorbs clock skew between instances.
    pub fn new<'a, I>(keys: I, issuer: &str, audience: &str, leeway: TimeDelta) -> Result<Self, TokenSetupError>
    where
        I: IntoIterator<Item = (&'a str, &'a [u8])>,
    {
        jwt_provider::install()?;
        if leeway < TimeDelta::zero() || leeway > MAX_LEEWAY {
            return Err(TokenSetupError::LeewayOutOfRange);
        }
        check_parties(issuer, audience)?;
        let mut public_keys = HashMap::new();
        for (kid, pkcs8) in keys {
            check_kid(kid)?;
            let pair =
                Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| TokenSetupError::InvalidKey { kid: kid.to_owned() })?;
            let public = DecodingKey::from_ed_der(pair.public_key().as_ref());
            if public_keys.insert(kid.to_owned(), public).is_some() {
                return Err(TokenSetupError::DuplicateKid { kid: kid.to_owned() });
            }
        }
        if public_keys.is_empty() {
            return Err(TokenSetupError::NoVerificationKeys);
        }

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        // jsonwebtoken only enforces presence of exp/nbf/aud/iss/sub from this list; `iat`,
        // `sid` and `jti` are checked in `check_claims`.
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        // jsonwebtoken compares exp against the system clock; we compare against the injected
        // `now` in `check_claims` instead, with the same leeway.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = leeway.num_seconds().unsigned_abs();

        Ok(Self { keys: public_keys, issuer: issuer.to_owned(), audience: audience.to_owned(), leeway, validation })
    }

    /// Checks `token` completely as of `now`. Every failure is a [`TokenError`] (answer 401).
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<VerifiedClaims, TokenError> {
        use TokenRejection as R;

        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(R::Malformed.into());
        }
        let mut parts = token.split('.');
        let (Some(header_part), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(R::Malformed.into());
        };
        let header = ReceivedHeader::decode(header_part)?;
        if header.alg.as_deref() != Some(PINNED_ALG) {
            return Err(R::Algorithm.into());
        }
        if header.typ.as_deref().is_some_and(|typ| typ != "JWT") {
            return Err(R::Malformed.into());
        }
        let kid = header.kid.ok_or(R::UnknownKid)?;
        let key = self.keys.get(&kid).ok_or(R::UnknownKid)?;

        // Checks, in this order: header again (alg in [EdDSA]), signature, claim types,
        // presence of exp/iss/aud/sub, iss, aud.
        let data =
            jsonwebtoken::decode::<ReceivedClaims>(token, key, &self.validation).map_err(|err| classify(err.kind()))?;
        self.check_claims(data.claims, kid, now)
    }

    /// What jsonwebtoken does not check, or checks against the wrong clock.
    fn check_claims(
        &self,
        claims: ReceivedClaims,
        kid: String,
        now: DateTime<Utc>,
    ) -> Result<VerifiedClaims, TokenError> {
        use TokenRejection as R;

        let iss = claims.iss.ok_or(R::MissingClaim)?;
        let aud = claims.aud.ok_or(R::MissingClaim)?;
        let sub = claims.sub.ok_or(R::MissingClaim)?;
        let sid = claims.sid.ok_or(R::MissingClaim)?;
        let jti = claims.jti.ok_or(R::MissingClaim)?;
        let iat = claims.iat.ok_or(R::MissingClaim)?;
        let exp = claims.exp.ok_or(R::MissingClaim)?;

        // Already enforced by jsonwebtoken; repeated so this function is correct on its own.
        if iss != self.issuer {
            return Err(R::Issuer.into());
        }
        if aud != self.audience {
            return Err(R::Audience.into());
        }

        let user_id = parse_uuid(&sub)?;
        let session_id = parse_uuid(&sid)?;
        let jti = parse_uuid(&jti)?;

        // A genuine token never claims more than the maximum lifetime; refusing one that does
        // caps the damage of a misconfigured signer elsewhere in the deployment.
        let lifetime = exp.checked_sub(iat).ok_or(R::Malformed)?;
        if lifetime <= 0 || lifetime > MAX_TOKEN_LIFETIME.num_seconds() {
            return Err(R::Malformed.into());
        }
        let issued_at = DateTime::from_timestamp(iat, 0).ok_or(R::Malformed)?;
        let expires_at = DateTime::from_timestamp(exp, 0).ok_or(R::Malformed)?;

        // RFC 7519: the token is valid while now < exp; leeway widens both ends for skew.
        let now = now.timestamp();
        let leeway = self.leeway.num_seconds();
        if now >= exp.saturating_add(leeway) {
            return Err(R::Expired.into());
        }
        if iat > now.saturating_add(leeway) {
            return Err(R::NotYetValid.into());
        }

        Ok(VerifiedClaims { user_id, session_id, jti, kid, issued_at, expires_at })
    }
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        f.debug_struct("TokenVerifier")
            .field("kids", &kids)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway.num_seconds())
            .finish()
    }
}

/// The header fields we look at before choosing a key. Unknown fields are ignored (jsonwebtoken
/// rejects `crit` and `b64` itself); a duplicated known field is a JSON error.
#[derive(Deserialize)]
struct ReceivedHeader {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<String>,
}

impl ReceivedHeader {
    fn decode(part: &str) -> Result<Self, TokenError> {
        let json = URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenRejection::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| TokenRejection::Malformed.into())
    }
}

/// The claims as received: every field optional so that a missing claim is told apart from a
/// malformed one; a present claim of the wrong type fails deserialisation (Malformed). Extra
/// claims are ignored, as RFC 7519 asks of claims a recipient does not understand.
#[derive(Deserialize)]
struct ReceivedClaims {
    iss: Option<String>,
    aud: Option<String>,
    sub: Option<String>,
    sid: Option<String>,
    jti: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
}

fn classify(kind: &ErrorKind) -> TokenRejection {
    match kind {
        ErrorKind::InvalidSignature => TokenRejection::Signature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName => TokenRejection::Algorithm,
        ErrorKind::MissingRequiredClaim(_) => TokenRejection::MissingClaim,
        ErrorKind::InvalidIssuer => TokenRejection::Issuer,
        ErrorKind::InvalidAudience => TokenRejection::Audience,
        ErrorKind::ExpiredSignature => TokenRejection::Expired,
        ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
        // Base64, JSON, UTF-8, token shape, claim format, and any kind added later.
        _ => TokenRejection::Malformed,
    }
}

fn parse_uuid(text: &str) -> Result<Uuid, TokenError> {
    Uuid::try_parse(text).map_err(|_| TokenRejection::Malformed.into())
}

fn check_parties(issuer: &str, audience: &str) -> Result<(), TokenSetupError> {
    if issuer.is_empty() || audience.is_empty() {
        return Err(TokenSetupError::EmptyIssuerOrAudience);
    }
    Ok(())
}

fn check_kid(kid: &str) -> Result<(), TokenSetupError> {
    if kid.is_empty() {
        return Err(TokenSetupError::EmptyKid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use serde_json::{Value, json};

    const ISSUER: &str = "humint";
    const AUDIENCE: &str = "humint-api";
    const KID: &str = "token-2026-01";

    /// A fixed instant (2026-05-28T...Z) so every time check is deterministic.
    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).unwrap()
    }

    fn new_pkcs8() -> Vec<u8> {
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap().as_ref().to_vec()
    }

    fn public_key(pkcs8: &[u8]) -> Vec<u8> {
        Ed25519KeyPair::from_pkcs8(pkcs8).unwrap().public_key().as_ref().to_vec()
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn signer(kid: &str, pkcs8: &[u8]) -> TokenSigner {
        TokenSigner::new(kid, pkcs8, ISSUER, AUDIENCE, MAX_TOKEN_LIFETIME).unwrap()
    }

    fn verifier(keys: &[(&str, &[u8])]) -> TokenVerifier {
        TokenVerifier::new(keys.iter().copied(), ISSUER, AUDIENCE, MAX_LEEWAY).unwrap()
    }

    /// One signing key, known to the verifier under `KID`.
    struct Fixture {
        pkcs8: Vec<u8>,
        verifier: TokenVerifier,
    }

    impl Fixture {
        fn new() -> Self {
            let pkcs8 = new_pkcs8();
            let verifier = verifier(&[(KID, &pkcs8)]);
            Self { pkcs8, verifier }
        }

        fn reason(&self, token: &str) -> TokenRejection {
            self.verifier.verify(token, now()).unwrap_err().reason()
        }
    }

    fn header(alg: &str, kid: &str) -> Value {
        json!({ "alg": alg, "typ": "JWT", "kid": kid })
    }

    /// Claims as `mint` would write them for a token issued `iat_offset` seconds from `now()`.
    fn claims_issued_at(iat_offset: i64) -> Value {
        let iat = now().timestamp() + iat_offset;
        json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": Uuid::new_v4().to_string(),
            "sid": Uuid::new_v4().to_string(),
            "jti": Uuid::new_v4().to_string(),
            "iat": iat,
            "exp": iat + MAX_TOKEN_LIFETIME.num_seconds(),
        })
    }

    fn good_claims() -> Value {
        claims_issued_at(0)
    }

    /// Signs arbitrary header and payload JSON with an Ed25519 key, bypassing jsonwebtoken, so
    /// tests can build tokens that `TokenSigner` would never produce.
    fn sign_ed25519(pkcs8: &[u8], header: &Value, payload: &Value) -> String {
        let message = format!("{}.{}", b64(header.to_string().as_bytes()), b64(payload.to_string().as_bytes()));
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).unwrap();
        let signature = pair.sign(message.as_bytes());
        format!("{message}.{}", b64(signature.as_ref()))
    }

    fn set(mut claims: Value, name: &str, value: Value) -> Value {
        claims[name] = value;
        claims
    }

    #[test]
    fn a_minted_token_verifies_and_yields_its_claims() {
        let fx = Fixture::new();
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let minted = signer(KID, &fx.pkcs8).mint(user, session, now()).unwrap();

        let verified = fx.verifier.verify(minted.token(), now()).unwrap();

        assert_eq!(verified.user_id(), user);
        assert_eq!(verified.session_id(), session);
        assert_eq!(verified.jti(), minted.jti());
        assert_eq!(verified.kid(), KID);
        assert_eq!(verified.issued_at(), now());
        assert_eq!(verified.expires_at(), now() + MAX_TOKEN_LIFETIME);
        assert_eq!(minted.expires_at(), now() + MAX_TOKEN_LIFETIME);
    }

    #[test]
    fn a_minted_token_has_an_eddsa_jwt_header_with_kid_and_all_claims() {
        let pkcs8 = new_pkcs8();
        let token = signer(KID, &pkcs8).mint(Uuid::new_v4(), Uuid::new_v4(), now()).unwrap().into_token();
        let mut parts = token.split('.');
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();

        assert_eq!(header, json!({ "alg": "EdDSA", "typ": "JWT", "kid": KID }));
        for name in ["iss", "aud", "sub", "sid", "jti", "iat", "exp"] {
            assert!(claims.get(name).is_some(), "claim {name} missing");
        }
        assert_eq!(claims["iat"], now().timestamp());
    }

    #[test]
    fn each_token_gets_a_fresh_jti() {
        let pkcs8 = new_pkcs8();
        let signer = signer(KID, &pkcs8);
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let a = signer.mint(user, session, now()).unwrap();
        let b = signer.mint(user, session, now()).unwrap();
        assert_ne!(a.jti(), b.jti());
    }

    #[test]
    fn a_garbage_string_is_malformed() {
        let fx = Fixture::new();
        assert_eq!(fx.reason("this is not a token"), TokenRejection::Malformed);
        assert_eq!(fx.reason("a.b.c"), TokenRejection::Malformed);
        assert_eq!(fx.reason("a.b.c.d"), TokenRejection::Malformed);
    }

    #[test]
    fn an_empty_token_is_malformed() {
        assert_eq!(Fixture::new().reason(""), TokenRejection::Malformed);
    }

    #[test]
    fn an_oversized_token_is_malformed() {
        let fx = Fixture::new();
        let padded = set(good_claims(), "filler", json!("x".repeat(MAX_TOKEN_LEN)));
        let token = sign_ed25519(&fx.pkcs8, &header("EdDSA", KID), &padded);
        assert_eq!(fx.reason(&token), TokenRejection::Malformed);
    }

    #[test]
    fn an_alg_none_token_is_refused_as_algorithm() {
        let fx = Fixture::new();
        let token = format!(
            "{}.{}.",
            b64(header("none", KID).to_string().as_bytes()),
            b64(good_claims().to_string().as_bytes())
        );
        assert_eq!(fx.reason(&token), TokenRejection::Algorithm);
    }

    #[test]
    fn an_hs256_token_keyed_with_our_public_key_is_refused_as_algorithm() {
        // Algorithm confusion: a verifier that let the header pick the algorithm would use the
        // (public) Ed25519 key bytes as an HMAC secret and accept this.
        let fx = Fixture::new();
        let message = format!(
            "{}.{}",
            b64(header("HS256", KID).to_string().as_bytes()),
            b64(good_claims().to_string().as_bytes())
        );
        let hmac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &public_key(&fx.pkcs8));
        let tag = ring::hmac::sign(&hmac_key, message.as_bytes());
        let token = format!("{message}.{}", b64(tag.as_ref()));
        assert_eq!(fx.reason(&token), TokenRejection::Algorithm);
    }

    #[test]
    fn another_algorithm_in_the_header_is_refused_even_with_a_valid_eddsa_signature() {
        let fx = Fixture::new();
        for alg in ["ES256", "RS256", "PS256", "HS512", "Ed25519", "eddsa", ""] {
            let token = sign_ed25519(&fx.pkcs8, &header(alg, KID), &good_claims());
            assert_eq!(fx.reason(&token), TokenRejection::Algorithm, "alg {alg:?}");
        }
        let no_alg = sign_ed25519(&fx.pkcs8, &json!({ "typ": "JWT", "kid": KID }), &good_claims());
        assert_eq!(fx.reason(&no_alg), TokenRejection::Algorithm);
    }

    #[test]
    fn a_payload_edited_after_signing_fails_the_signature() {
        let fx = Fixture::new();
        let token = signer(KID, &fx.pkcs8).mint(Uuid::new_v4(), Uuid::new_v4(), now()).unwrap().into_token();
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["sub"] = json!(Uuid::new_v4().to_string());
        let forged = format!("{}.{}.{}", parts[0], b64(claims.to_string().as_bytes()), parts[2]);
        assert_eq!(fx.reason(&forged), TokenRejection::Signature);
    }

    #[test]
    fn a_token_signed_by_another_key_under_our_kid_fails_the_signature() {
        let fx = Fixture::new();
        let intruder = new_pkcs8();
        let token = signer(KID, &intruder).mint(Uuid::new_v4(), Uuid::new_v4(), now()).unwrap();
        assert_eq!(fx.reason(token.token()), TokenRejection::Signature);
    }

    #[test]
    fn a_truncated_signature_fails_the_signature() {
        let fx = Fixture::new();
        let token = sign_ed25519(&fx.pkcs8, &header("EdDSA", KID), &good_claims());
        // Two base64 characters fewer is a whole byte short (63 bytes decode cleanly).
        let shortened = &token[..token.len() - 2];
        assert_eq!(fx.reason(shortened), TokenRejection::Signature);
    }

    #[test]
    fn an_unknown_kid_is_refused() {
        let fx = Fixture::new();
        let token = signer("token-2099-01", &fx.pkcs8).mint(Uuid::new_v4(), Uuid::new_v4(), now()).unwrap();
        assert_eq!(fx.reason(token.token()), TokenRejection::UnknownKid);
    }

    #[test]
    fn a_missing_kid_is_refused_as_unknown_kid() {
        let fx = Fixture::new();
        let token = sign_ed25519(&fx.pkcs8, &json!({ "alg": "EdDSA", "typ": "JWT" }), &good_claims());
        assert_eq!(fx.reason(&token), TokenRejection::UnknownKid);
    }

    #[test]
    fn a_typ_other_than_jwt_is_malformed() {
        let fx = Fixture::new();
        let header = json!({ "alg": "EdDSA", "typ": "at+jwt+other", "kid": KID });
        let token = sign_ed25519(&fx.pkcs8, &header, &good_claims());
        assert_eq!(fx.reason(&token), TokenRejection::Malformed);
    }

    #[test]
    fn a_wrong_audience_is_refused() {
        let fx = Fixture::new();
        let claims = set(good_claims(), "aud", json!("someone-else"));
        let token = sign_ed25519(&fx.pkcs8, &header("EdDSA", KID), &claims);
        assert_eq!(fx.reason(&token), TokenRejection::Audience);
    }

    #[test]
    fn a_wrong_issuer_is_refused() {
        let fx = Fixture::new();
        let claims = set(good_claims(), "iss", json!("evil-issuer"));
        let token = sign_ed25519(&fx.pkcs8, &header("EdDSA", KID), &claims);
        assert_eq!(fx.reason(&token), TokenRejection::Issuer);
    }

    #[test]
    fn expiry_is_judged_against_the_injected_clock_with_leeway() {
        let fx = Fixture::new();
        let token = signer(KID, &fx.pkcs8).mint(Uuid::new_v4(), Uuid::new_v4(), now()).unwrap();
        let exp = token.expires_at();

        // exp = now - 10 s: inside the 30 s leeway.
        let ten_past = exp + TimeDelta::seconds(10);
        assert!(fx.verifier.verify(token.token(), ten_past).is_ok());
        // exp = now - 31 s: beyond it.
        let thirty_one_past = exp + TimeDelta::seconds(31);
        let err = fx.verifier.verify(token.token(), thirty_one_past).unwrap_err();
        assert_eq!(err.reason(), TokenRejection::Expired);
    }

    #[test]
    fn an_iat_in_the_future_beyond_leeway_is_not_yet_valid() {
        let fx = Fixture::new();
        let far = sign_ed25519(&fx.pkcs8, &header("EdDSA", KID), &claims_issued_at(31));
        assert_eq!(fx.reason(&far), TokenRejection::NotYetValid);
        // Within the leeway, a little skew between instances is tolerated.
        let near = sign_ed25519(&fx.pkcs8, &header("EdDSA", KID), &claims_issued_at(10));
        assert!(fx.verifier.verify(&near, now()).is_ok());
    }

    #[test]
    fn each_missing_claim_is_refused() {
        let fx = Fixture::new();
        for name in ["sid", "jti", "sub", "exp", "iat", "iss", "aud"] {
            let mut claims = good_claims();
            claims.as_object_mut().unwrap().remove(name);
            let token = sign_ed25519(&fx.pkcs8, &header("EdDSA", KID), &claims);
            assert_eq!(fx.reason(&token), TokenRejection::MissingClaim, "without {name}");
        }
    }

    #[test]
    fn a_null_claim_counts_as_missing() {
        let fx = Fixture::new();
        let claims = set(good_claims(), "sid", Value::Null);
        let token = sign_ed25519(&fx.pkcs8, &header("EdDSA", KID), &claims);
        assert_eq!(fx.reason(&token), TokenRejection::MissingClaim);
    }

    #[test]
    fn ids_that_are_not_uuids_or_claims_of_the_wrong_type_are_malformed() {
        let fx = Fixture::new();
        for (name, value) in [
            ("sub", json!("admin")),
            ("sid", json!("not-a-session")),
            ("jti", json!("1")),
            ("sid", json!(42)),
            ("exp", json!("tomorrow")),
            ("aud", json!([AUDIENCE, "other"])),
        ] {
            let token = sign_ed25519(&fx.pkcs8, &header("EdDSA", KID), &set(good_claims(), name, value.clone()));
            assert_eq!(fx.reason(&token), TokenRejection::Malformed, "{name} = {value}");
        }
    }

    #[test]
    fn a_lifetime_longer_than_fifteen_minutes_or_inverted_is_malformed() {
        let fx = Fixture::new();
        let iat = now().timestamp();
        for exp in [iat + 3600, iat, iat - 1] {
            let claims = set(good_claims(), "exp", json!(exp));
            let token = sign_ed25519(&fx.pkcs8, &header("EdDSA", KID), &claims);
            assert_eq!(fx.reason(&token), TokenRejection::Malformed, "exp {exp}");
        }
    }

    #[test]
    fn extra_claims_are_ignored() {
        let fx = Fixture::new();
        let claims = set(good_claims(), "scope", json!("anything"));
        let token = sign_ed25519(&fx.pkcs8, &header("EdDSA", KID), &claims);
        assert!(fx.verifier.verify(&token, now()).is_ok());
    }

    #[test]
    fn old_and_new_keys_both_verify_during_rotation() {
        let (old, new) = (new_pkcs8(), new_pkcs8());
        let verifier = verifier(&[("token-old", &old), ("token-new", &new)]);
        for (kid, key) in [("token-old", &old), ("token-new", &new)] {
            let minted = signer(kid, key).mint(Uuid::new_v4(), Uuid::new_v4(), now()).unwrap();
            let verified = verifier.verify(minted.token(), now()).unwrap();
            assert_eq!(verified.kid(), kid);
        }
        // The kid selects the key: the old key's signature under the new kid does not verify.
        let mislabelled = sign_ed25519(&old, &header("EdDSA", "token-new"), &good_claims());
        let err = verifier.verify(&mislabelled, now()).unwrap_err();
        assert_eq!(err.reason(), TokenRejection::Signature);
    }

    #[test]
    fn a_signer_lifetime_of_sixteen_minutes_is_refused() {
        let pkcs8 = new_pkcs8();
        let make = |lifetime| TokenSigner::new(KID, &pkcs8, ISSUER, AUDIENCE, lifetime);
        assert_eq!(make(TimeDelta::minutes(16)).unwrap_err(), TokenSetupError::LifetimeOutOfRange);
        assert_eq!(make(TimeDelta::zero()).unwrap_err(), TokenSetupError::LifetimeOutOfRange);
        assert!(make(TimeDelta::minutes(15)).is_ok());
    }

    #[test]
    fn a_leeway_beyond_thirty_seconds_is_refused() {
        let pkcs8 = new_pkcs8();
        let make = |leeway| TokenVerifier::new([(KID, pkcs8.as_slice())], ISSUER, AUDIENCE, leeway);
        assert_eq!(make(TimeDelta::seconds(31)).unwrap_err(), TokenSetupError::LeewayOutOfRange);
        assert_eq!(make(TimeDelta::seconds(-1)).unwrap_err(), TokenSetupError::LeewayOutOfRange);
        assert!(make(TimeDelta::zero()).is_ok());
    }

    #[test]
    fn bad_key_material_and_keyring_mistakes_are_setup_errors() {
        let pkcs8 = new_pkcs8();
        let garbage: &[u8] = b"not a key";
        assert_eq!(
            TokenSigner::new(KID, garbage, ISSUER, AUDIENCE, MAX_TOKEN_LIFETIME).unwrap_err(),
            TokenSetupError::InvalidKey { kid: KID.into() }
        );
        assert_eq!(
            TokenSigner::new("", &pkcs8, ISSUER, AUDIENCE, MAX_TOKEN_LIFETIME).unwrap_err(),
            TokenSetupError::EmptyKid
        );
        assert_eq!(
            TokenSigner::new(KID, &pkcs8, "", AUDIENCE, MAX_TOKEN_LIFETIME).unwrap_err(),
            TokenSetupError::EmptyIssuerOrAudience
        );
        let verifier_with =
            |keys: Vec<(&'static str, &[u8])>| TokenVerifier::new(keys, ISSUER, AUDIENCE, MAX_LEEWAY).unwrap_err();
        assert_eq!(verifier_with(vec![(KID, garbage)]), TokenSetupError::InvalidKey { kid: KID.into() });
        assert_eq!(
            verifier_with(vec![(KID, &pkcs8), (KID, &pkcs8)]),
            TokenSetupError::DuplicateKid { kid: KID.into() }
        );
        assert_eq!(verifier_with(vec![]), TokenSetupError::NoVerificationKeys);
    }

    #[test]
    fn debug_of_the_signer_shows_no_key_material() {
        let pkcs8 = new_pkcs8();
        let signer = signer(KID, &pkcs8);
        assert_eq!(
            format!("{signer:?}"),
            "TokenSigner { kid: \"token-2026-01\", issuer: \"humint\", \
             audience: \"humint-api\", lifetime_secs: 900, key: \"[redacted]\" }"
        );
    }

    #[test]
    fn debug_of_a_minted_token_hides_the_token() {
        let pkcs8 = new_pkcs8();
        let minted = signer(KID, &pkcs8).mint(Uuid::new_v4(), Uuid::new_v4(), now()).unwrap();
        let debug = format!("{minted:?}");
        assert!(debug.contains("token: \"[redacted]\""), "{debug}");
        let signature_part = minted.token().rsplit('.').next().unwrap();
        assert!(!debug.contains(signature_part));
        assert!(!debug.contains(minted.token().split('.').next().unwrap()));
    }

    #[test]
    fn a_token_error_shows_only_the_reason_never_the_token() {
        let fx = Fixture::new();
        let token = sign_ed25519(&fx.pkcs8, &header("EdDSA", KID), &set(good_claims(), "aud", json!("x")));
        let err = fx.verifier.verify(&token, now()).unwrap_err();
        assert_eq!(err.to_string(), "invalid access token");
        assert_eq!(format!("{err:?}"), "TokenError { reason: Audience }");
        assert_eq!(err.reason().as_str(), "audience");
    }
}
