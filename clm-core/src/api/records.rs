//! Records the bindings receive that are not rows: what an operation hands
//! back once (a token, a key, a secret) together with rows, and the
//! description of an actor. Fields marked `x-secret` in the schema are shown
//! this once; the bindings keep them out of their `repr`s.

use schemars::JsonSchema;
use serde::Serialize;

use crate::model::{ApiKey, ApiKeyId, OrganizationId, Session, SessionId, User, UserId};
use crate::{Actor, ActorKind};

/// A successful login.
#[derive(Serialize, JsonSchema)]
pub struct LoginResult {
    /// The bearer token of the new session, shown this once.
    #[schemars(extend("x-secret" = true))]
    pub token: String,
    /// The session the token opens (its hash is not serialized).
    pub session: Session,
    /// The user who logged in.
    pub user: User,
}

/// A created API key.
#[derive(Serialize, JsonSchema)]
pub struct CreatedApiKey {
    /// The key itself, shown this once.
    #[schemars(extend("x-secret" = true))]
    pub key: String,
    /// The stored key row (its hash is not serialized).
    pub api_key: ApiKey,
}

/// A started TOTP enrollment, shown once to put into an authenticator app.
#[derive(Serialize, JsonSchema)]
pub struct MfaEnrollment {
    /// The shared secret in base32.
    #[schemars(extend("x-secret" = true))]
    pub secret_base32: String,
    /// The `otpauth://` URI (it holds the secret).
    #[schemars(extend("x-secret" = true))]
    pub provisioning_uri: String,
}

/// A key and a PKCS#10 CSR for it, made outside any database.
#[derive(Serialize, JsonSchema)]
pub struct CsrBundle {
    /// The PKCS#10 CSR, PEM, signed with the new key.
    pub csr_pem: String,
    /// The new private key, PKCS#8 PEM.
    #[schemars(extend("x-secret" = true))]
    pub private_key_pem: String,
}

/// Secret text handed back this once (an exported private key's PEM).
pub struct SecretText;

impl JsonSchema for SecretText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretText".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "x-secret": true})
    }
}

/// Who an actor is, as a binding shows it; never its permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ActorDescription {
    /// User, API key or system.
    pub kind: ActorKindName,
    /// The user acting (for an API key, its owner); None for the system.
    pub user_id: Option<UserId>,
    /// The session it came from (`validate_session`); None otherwise.
    pub session_id: Option<SessionId>,
    /// The API key it came from (`authenticate_api_key`); None otherwise.
    pub api_key_id: Option<ApiKeyId>,
    /// The active organizations the actor acts in.
    pub organization_ids: Vec<OrganizationId>,
}

/// What kind of actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKindName {
    /// A user, from a session or `actor_for_user`.
    User,
    /// An API key, acting for its user within its scopes.
    ApiKey,
    /// The host application: every permission.
    System,
}

impl ActorDescription {
    /// The description of `actor`.
    pub fn of(actor: &Actor) -> Self {
        ActorDescription {
            kind: match actor.kind {
                ActorKind::User(_) => ActorKindName::User,
                ActorKind::ApiKey { .. } => ActorKindName::ApiKey,
                ActorKind::System => ActorKindName::System,
            },
            user_id: actor.user_id(),
            session_id: actor.session_id,
            api_key_id: actor.api_key_id(),
            organization_ids: actor.organization_ids().to_vec(),
        }
    }
}

/// An actor crosses to a binding as an opaque handle (its permissions stay
/// in the core); the schema says so and names the description it shows.
impl JsonSchema for Actor {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Actor".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let description = generator.subschema_for::<ActorDescription>();
        schemars::json_schema!({
            "type": "object",
            "x-handle": "actor",
            "x-describes-as": description,
            "description": "Who performs an operation: an opaque handle from system_actor, validate_session, authenticate_api_key or actor_for_user.",
        })
    }
}

/// What `open` makes: the handle every other operation is called on.
pub struct ClmHandle;

impl JsonSchema for ClmHandle {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Clm".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "x-handle": "clm",
            "description": "An open clm: the pools, the keyring and the caches.",
        })
    }
}
