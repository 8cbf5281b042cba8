//! Users, authentication (password + TOTP), lockout, sessions and API keys.

use chrono::Duration;
use serde_json::json;

use crate::crypto::envelope::Sealed;
use crate::crypto::secret::{SecretBytes, SecretString};
use crate::crypto::{password, token, totp};
use crate::keyring::mfa_aad;
use crate::model::{
    ApiKey, ApiKeyId, AuditOutcome, OrganizationId, Permissions, Session, SessionId, User, UserId,
    UserStatus,
};
use crate::service::access::add_membership;
use crate::service::actor::{Access, Actor, ActorKind, Grants, KeyBounds};
use crate::service::audit::{AuditEntry, append, commit_audited};
use crate::store::audit::AuditLogKind;
use crate::store::users::{UserFilter, Users};
use crate::store::{self, Page, PageRequest, api_keys, now, sessions, users};
use crate::{Clm, Error, Result, SecuritySettings};

/// A user to create.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Unique login name, 3-64 letters, digits, `.`, `_`, `-` or `@`.
    pub username: String,
    /// Unique address; stored lowercased.
    pub email: String,
    /// The name shown to people.
    pub display_name: Option<String>,
    /// None creates an account that cannot log in until a password is set.
    pub password: Option<SecretString>,
    /// The organization the user joins (required unless the actor is global).
    pub organization_id: Option<OrganizationId>,
}

/// Changes to a user; None leaves a field as it is.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    /// A new address (lowercased, must stay unique).
    pub email: Option<String>,
    /// A new name shown to people.
    pub display_name: Option<String>,
    /// A new status; any status but active also ends the user's sessions.
    pub status: Option<UserStatus>,
}

/// Where a login comes from (recorded on the session).
#[derive(Debug, Clone, Default)]
pub struct LoginContext {
    /// The client's address as the host saw it (not checked).
    pub ip_address: Option<String>,
    /// The client's `User-Agent` as the host received it.
    pub user_agent: Option<String>,
}

/// A successful login: the bearer token is shown this once.
#[derive(Debug)]
pub struct LoginOutcome {
    /// The bearer token (`clms_...`) for [`Clm::validate_session`]; only its
    /// hash is stored.
    pub token: SecretString,
    /// The new session row.
    pub session: Session,
    /// The user who logged in.
    pub user: User,
}

/// An MFA enrollment to show the user once (secret and otpauth URI).
#[derive(Debug)]
pub struct MfaEnrollment {
    /// The TOTP secret in base32, for typing into an authenticator app.
    pub secret_base32: SecretString,
    /// The `otpauth://totp/...` URI, for a QR code.
    pub provisioning_uri: SecretString,
}

/// An API key to create.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// A label for people; required.
    pub name: String,
    /// A subset of the creator's permissions (an object or JSON text);
    /// None = all of them.
    #[serde(
        default,
        deserialize_with = "crate::model::documents::optional_document"
    )]
    pub scopes: Option<Permissions>,
    /// When the key stops working; must be in the future. None: never,
    /// unless the creating key expires (a key cannot outlive its creator).
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Binds the key to one organization (it acts only there); a key
    /// created by a bound key must name the same one.
    pub organization_id: Option<OrganizationId>,
}

/// A created API key: the key text is shown this once.
#[derive(Debug)]
pub struct CreatedApiKey {
    /// The key text (`clm_<id>_<secret>`) for [`Clm::authenticate_api_key`];
    /// only its hash is stored.
    pub key: SecretString,
    /// The new key's row.
    pub api_key: ApiKey,
}

/// One message for every credential failure, so callers cannot tell an
/// unknown user from a wrong password.
fn bad_credentials() -> Error {
    Error::Authentication("invalid username, password or one-time code".into())
}

fn validate_username(username: &str) -> Result<String> {
    let username = username.trim();
    let valid = (3..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !valid {
        return Err(Error::invalid(
            "username",
            "must be 3-64 characters of letters, digits, '.', '_', '-' or '@'",
        ));
    }
    Ok(username.to_string())
}

fn validate_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    crate::model::SubjectAlternativeName::Email(email.clone())
        .validate()
        .map_err(|reason| Error::invalid("email", reason))?;
    Ok(email)
}

impl Clm {
    /// Hashes a password off the async executor, bounded by a semaphore.
    pub(crate) async fn hash_password(&self, password: SecretString) -> Result<String> {
        self.run_cpu(move || password::hash_password(&password))
            .await
    }

    async fn verify_password(&self, password: SecretString, phc: String) -> Result<(bool, bool)> {
        self.run_cpu(move || password::verify_password(&password, &phc))
            .await
    }

    /// Creates a user (and its membership when an organization is given).
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn create_user(&self, actor: &Actor, new: NewUser) -> Result<User> {
        self.authorize(
            actor,
            Access::new("users", "create").in_org(new.organization_id),
        )
        .await?;
        let username = validate_username(&new.username)?;
        let email = validate_email(&new.email)?;
        let password_hash = match &new.password {
            Some(pw) => {
                password::check_password_policy(pw, &username, &email)?;
                Some(self.hash_password(pw.clone()).await?)
            }
            None => None,
        };
        let at = now();
        let user = User {
            id: UserId::new(),
            username,
            email,
            display_name: new.display_name.clone(),
            status: UserStatus::Active,
            password_hash: password_hash.map(crate::model::OpaqueText),
            mfa_enabled: false,
            mfa_secret: None,
            mfa_secret_nonce: None,
            mfa_encryption_key_id: None,
            mfa_last_used_step: None,
            failed_login_attempts: 0,
            locked_until: None,
            last_login_at: None,
            password_changed_at: new.password.as_ref().map(|_| at),
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        let mut tx = self.databases().core.begin().await?;
        users::insert(&mut tx.conn(), &user).await?;
        if let Some(org) = new.organization_id {
            add_membership(&mut tx.conn(), user.id, org, "member").await?;
        }
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new("user.created", "create")
                .resource("user", user.id)
                .org(new.organization_id)
                .details(json!({"username": user.username, "email": user.email})),
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// A user by id. Needs `users:read` and a shared organization (or
    /// oneself); a user out of reach is NotFound.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn get_user(&self, actor: &Actor, id: UserId) -> Result<User> {
        Ok(self.authorize_user(actor, "read", id, false).await?.user)
    }

    /// The user named `username`; one the actor may not see is reported
    /// missing by the name asked for, never by its id.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn get_user_by_username(&self, actor: &Actor, username: &str) -> Result<User> {
        let missing = || Error::not_found("user", username);
        let id = {
            let mut conn = self.databases().core.acquire().await?;
            match users::get_by_username(&mut conn.conn(), username).await {
                Ok(user) => user.id,
                Err(Error::NotFound { .. }) => return Err(missing()),
                Err(other) => return Err(other),
            }
        };
        match self.get_user(actor, id).await {
            Err(Error::NotFound { .. }) => Err(missing()),
            other => other,
        }
    }

    /// Lists the users of the organizations where the actor has `users:read`
    /// (every user for a global reader), filtered by `filter`.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn list_users(
        &self,
        actor: &Actor,
        filter: &UserFilter,
        page: &PageRequest,
    ) -> Result<Page<User>> {
        self.authorize(actor, Access::new("users", "read")).await?;
        let mut filter = filter.clone();
        if let Some(orgs) = actor.organizations_where("users", "read") {
            filter.organization_ids = Some(match filter.organization_ids.take() {
                Some(asked) => asked.into_iter().filter(|o| orgs.contains(o)).collect(),
                None => orgs,
            });
        }
        let mut conn = self.databases().acquire_core_read().await?;
        users::list_users(&mut conn.conn(), &filter, page).await
    }

    /// Changes a user's email, display name or status. Needs `users:update`
    /// and containment (the actor holds whatever the user holds); a status
    /// other than active ends the user's sessions.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn update_user(&self, actor: &Actor, id: UserId, update: UserUpdate) -> Result<User> {
        self.authorize_user(actor, "update", id, false).await?;
        let email = update.email.as_deref().map(validate_email).transpose()?;
        let mut tx = self.databases().core.begin().await?;
        let mut user = store::get::<Users>(&mut tx.conn(), id, false).await?;
        if let Some(email) = email {
            user.email = email;
        }
        if let Some(name) = update.display_name {
            user.display_name = Some(name);
        }
        let mut ended_sessions = 0;
        if let Some(status) = update.status {
            user.status = status;
            if status != UserStatus::Locked {
                user.locked_until = None;
            }
            if status != UserStatus::Active {
                ended_sessions =
                    sessions::revoke_all_for_user(&mut tx.conn(), id, "user not active", now())
                        .await?;
            }
        }
        users::update(&mut tx.conn(), &user).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new("user.updated", "update")
                .resource("user", id)
                .details(json!({"email": user.email, "status": user.status, "sessions_ended": ended_sessions})),
        )
        .await?;
        let user = store::get::<Users>(&mut tx.conn(), id, false).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Soft-deletes a user and ends its sessions.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn delete_user(&self, actor: &Actor, id: UserId) -> Result<()> {
        self.authorize_user(actor, "delete", id, false).await?;
        let mut tx = self.databases().core.begin().await?;
        store::soft_delete::<Users>(&mut tx.conn(), id).await?;
        sessions::revoke_all_for_user(&mut tx.conn(), id, "user deleted", now()).await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("user.deleted", "delete").resource("user", id),
        )
        .await
    }

    /// Undoes [`Clm::delete_user`]. Needs `users:update` and containment;
    /// the sessions ended by the delete stay ended.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn restore_user(&self, actor: &Actor, id: UserId) -> Result<User> {
        self.authorize_user(actor, "update", id, true).await?;
        let mut tx = self.databases().core.begin().await?;
        store::restore::<Users>(&mut tx.conn(), id).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new("user.restored", "restore").resource("user", id),
        )
        .await?;
        let user = store::get::<Users>(&mut tx.conn(), id, false).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Resets another user's password (an administrator's reset): needs
    /// `users:update` and containment over the user, and ends every session
    /// of theirs. One's own password is changed with
    /// [`Clm::change_password`], which asks for the current one.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn set_password(
        &self,
        actor: &Actor,
        id: UserId,
        new_password: SecretString,
    ) -> Result<()> {
        if actor.user_id() == Some(id) {
            self.require_sensitive_self_service(actor, "set own password")
                .await?;
            return Err(Error::invalid(
                "user_id",
                "is your own account: change your password with change_password, which asks for the current one",
            ));
        }
        let subject = self.authorize_user(actor, "update", id, false).await?;
        let user = subject.user;
        password::check_password_policy(&new_password, &user.username, &user.email)?;
        let hash = self.hash_password(new_password).await?;
        self.store_password(actor, id, hash, None, "user.password_reset")
            .await
    }

    /// Changes the acting user's own password. Needs a user acting in
    /// person (a session, not an API key), the current password, and a
    /// current one-time code when MFA is on; ends the user's other sessions.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn change_password(
        &self,
        actor: &Actor,
        current_password: SecretString,
        new_password: SecretString,
        otp: Option<&str>,
    ) -> Result<()> {
        let user = self
            .reauthenticate(actor, "change own password", current_password, otp)
            .await?;
        password::check_password_policy(&new_password, &user.username, &user.email)?;
        let hash = self.hash_password(new_password).await?;
        self.store_password(
            actor,
            user.id,
            hash,
            actor.session_id,
            "user.password_changed",
        )
        .await
    }

    /// Writes a new password hash and ends the user's sessions but `keep`.
    async fn store_password(
        &self,
        actor: &Actor,
        id: UserId,
        hash: String,
        keep: Option<SessionId>,
        event: &str,
    ) -> Result<()> {
        let at = now();
        let mut tx = self.databases().core.begin().await?;
        let mut user = store::get::<Users>(&mut tx.conn(), id, false).await?;
        user.password_hash = Some(crate::model::OpaqueText(hash));
        user.password_changed_at = Some(at);
        users::update(&mut tx.conn(), &user).await?;
        let ended =
            sessions::revoke_others_for_user(&mut tx.conn(), id, keep, "password changed", at)
                .await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new(event, "update")
                .resource("user", id)
                .details(json!({"sessions_ended": ended})),
        )
        .await
    }

    /// Sensitive self-service (own password, MFA) is done by the user in
    /// person: through a session or a host-authenticated user actor, never
    /// an API key.
    async fn require_sensitive_self_service(&self, actor: &Actor, what: &str) -> Result<UserId> {
        match actor.kind {
            ActorKind::User(id) => Ok(id),
            _ => Err(self
                .refuse(actor, Access::new("users", "update"), what)
                .await),
        }
    }

    /// Proves the acting user is present: current password, and a current
    /// one-time code (claimed once) when MFA is on. A failure counts
    /// towards lockout like a failed login.
    async fn reauthenticate(
        &self,
        actor: &Actor,
        what: &str,
        current_password: SecretString,
        otp: Option<&str>,
    ) -> Result<User> {
        let id = self.require_sensitive_self_service(actor, what).await?;
        let user = {
            let mut conn = self.databases().core.acquire().await?;
            store::get::<Users>(&mut conn.conn(), id, false).await?
        };
        let matched = match user.password_hash.clone() {
            Some(phc) => self.verify_password(current_password, phc.0).await?.0,
            None => false,
        };
        if matched
            && user.mfa_enabled
            && let Some(key_id) = user.mfa_encryption_key_id
        {
            self.load_data_key(key_id).await?;
        }
        let otp_ok = if matched && user.mfa_enabled {
            match (self.open_mfa_secret(&user)?, otp) {
                (Some(secret), Some(code)) => match totp::verify(&secret, code, now().timestamp())?
                {
                    Some(step) => {
                        let mut conn = self.databases().core.acquire().await?;
                        users::claim_totp_step(&mut conn.conn(), id, step).await?
                    }
                    None => false,
                },
                _ => false,
            }
        } else {
            true
        };
        if matched && otp_ok {
            return Ok(user);
        }
        // Counted like a failed login (the same lockout), so a stolen
        // session cannot guess the password without limit.
        let counted: Result<()> = self
            .count_login_failure(&user, &format!("re-authentication to {what} failed"), now())
            .await;
        match counted {
            Err(Error::Authentication(_)) | Ok(()) => Err(Error::Authentication(
                "the current password or one-time code is wrong".into(),
            )),
            Err(other) => Err(other),
        }
    }

    /// Lifts a lockout and clears the failure count.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn unlock_user(&self, actor: &Actor, id: UserId) -> Result<User> {
        self.authorize_user(actor, "unlock", id, false).await?;
        let mut tx = self.databases().core.begin().await?;
        let mut user = store::get::<Users>(&mut tx.conn(), id, false).await?;
        if user.status != UserStatus::Locked {
            return Err(Error::conflict(format!(
                "user {} is {}, not locked",
                user.username, user.status
            )));
        }
        user.status = UserStatus::Active;
        user.locked_until = None;
        user.failed_login_attempts = 0;
        users::update(&mut tx.conn(), &user).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new("user.unlocked", "unlock").resource("user", id),
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Starts MFA enrollment for the acting user, in person and with their
    /// current password: a fresh 160-bit secret, sealed at rest. MFA turns
    /// on once a code is confirmed.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn begin_mfa_enrollment(
        &self,
        actor: &Actor,
        current_password: SecretString,
    ) -> Result<MfaEnrollment> {
        let user = self
            .reauthenticate(actor, "enrol MFA", current_password, None)
            .await?;
        if user.mfa_enabled {
            return Err(Error::conflict("MFA is already enabled; disable it first"));
        }
        let user_id = user.id;
        let secret = totp::generate_secret();
        let aad = mfa_aad(user_id);
        let aad_refs: Vec<&str> = aad.iter().map(String::as_str).collect();
        let mut tx = self.databases().core.begin().await?;
        let mut user = store::get::<Users>(&mut tx.conn(), user_id, false).await?;
        if user.mfa_enabled {
            return Err(Error::conflict("MFA is already enabled; disable it first"));
        }
        crate::service::rotation::lock_data_keys(&mut tx.conn(), false).await?;
        let (key_id, sealed) = self.seal_under_live_key(secret.expose(), &aad_refs).await?;
        user.mfa_secret = Some(crate::model::Opaque(sealed.ciphertext));
        user.mfa_secret_nonce = Some(crate::model::Opaque(sealed.nonce));
        user.mfa_encryption_key_id = Some(key_id);
        user.mfa_last_used_step = None;
        users::update(&mut tx.conn(), &user).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new("user.mfa_enrollment_started", "update").resource("user", user_id),
        )
        .await?;
        tx.commit().await?;
        Ok(MfaEnrollment {
            secret_base32: totp::base32_encode(secret.expose()),
            provisioning_uri: totp::provisioning_uri(&secret, "clm", &user.username),
        })
    }

    /// Confirms enrollment with a current code and turns MFA on (the user
    /// in person).
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn confirm_mfa_enrollment(&self, actor: &Actor, code: &str) -> Result<()> {
        let user_id = self
            .require_sensitive_self_service(actor, "confirm MFA enrolment")
            .await?;
        let mut tx = self.databases().core.begin().await?;
        let mut user = store::get::<Users>(&mut tx.conn(), user_id, false).await?;
        if user.mfa_enabled {
            return Err(Error::conflict("MFA is already enabled"));
        }
        if let Some(key_id) = user.mfa_encryption_key_id {
            self.load_data_key(key_id).await?;
        }
        let secret = self
            .open_mfa_secret(&user)?
            .ok_or_else(|| Error::conflict("no MFA enrollment in progress"))?;
        let step = totp::verify(&secret, code, now().timestamp())?
            .ok_or_else(|| Error::invalid("code", "one-time code does not match"))?;
        user.mfa_enabled = true;
        user.mfa_last_used_step = Some(step);
        users::update(&mut tx.conn(), &user).await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("user.mfa_enabled", "update").resource("user", user_id),
        )
        .await
    }

    /// Turns MFA off. For oneself: in person, with the current password and
    /// a current one-time code. For another user (a lost device): `users:update`
    /// and containment over them. Always audited.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn disable_mfa(
        &self,
        actor: &Actor,
        id: UserId,
        current_password: Option<SecretString>,
        otp: Option<&str>,
    ) -> Result<()> {
        if actor.user_id() == Some(id) {
            let current_password = match current_password {
                Some(password) => password,
                None => {
                    self.require_sensitive_self_service(actor, "disable own MFA")
                        .await?;
                    return Err(Error::invalid(
                        "current_password",
                        "is required to turn off your own MFA",
                    ));
                }
            };
            self.reauthenticate(actor, "disable own MFA", current_password, otp)
                .await?;
        } else {
            self.authorize_user(actor, "update", id, false).await?;
        }
        let mut tx = self.databases().core.begin().await?;
        let mut user = store::get::<Users>(&mut tx.conn(), id, false).await?;
        user.mfa_enabled = false;
        user.mfa_secret = None;
        user.mfa_secret_nonce = None;
        user.mfa_encryption_key_id = None;
        user.mfa_last_used_step = None;
        users::update(&mut tx.conn(), &user).await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("user.mfa_disabled", "update").resource("user", id),
        )
        .await
    }

    fn open_mfa_secret(&self, user: &User) -> Result<Option<SecretBytes>> {
        let (Some(secret), Some(nonce), Some(key_id)) = (
            &user.mfa_secret,
            &user.mfa_secret_nonce,
            user.mfa_encryption_key_id,
        ) else {
            return Ok(None);
        };
        let aad = mfa_aad(user.id);
        let aad_refs: Vec<&str> = aad.iter().map(String::as_str).collect();
        let sealed = Sealed {
            nonce: nonce.0.clone(),
            ciphertext: secret.0.clone(),
        };
        self.keyring().open(key_id, &sealed, &aad_refs).map(Some)
    }

    /// Authenticates by username or email + password (+ TOTP code when MFA is
    /// on) and opens a session. A login with an '@' is an email address,
    /// anything else a username. Every failure is the same Authentication
    /// error; each is audited, and repeated failures lock the account.
    #[tracing::instrument(skip_all, fields(organization), err(level = "info"))]
    pub async fn authenticate(
        &self,
        login: &str,
        password: SecretString,
        otp: Option<&str>,
        context: LoginContext,
    ) -> Result<LoginOutcome> {
        let security = self.config().security;
        let found = {
            let mut conn = self.databases().core.acquire().await?;
            users::find_by_login(&mut conn.conn(), login).await?
        };
        let Some(user) = found else {
            // Spend the same time as a real check so timing does not reveal
            // whether the account exists.
            let _ = self.verify_password(password, DUMMY_HASH.to_string()).await;
            self.audit_login_failure(None, "unknown user").await?;
            return Err(bad_credentials());
        };
        let at = now();
        // An expired lock lifts by itself.
        let locked =
            user.status == UserStatus::Locked && user.locked_until.is_none_or(|until| until > at);
        if locked || (user.status != UserStatus::Active && user.status != UserStatus::Locked) {
            self.audit_login_failure(Some(&user), &format!("account {}", user.status))
                .await?;
            return Err(bad_credentials());
        }
        let Some(phc) = user.password_hash.clone() else {
            self.audit_login_failure(Some(&user), "no password set")
                .await?;
            return Err(bad_credentials());
        };
        let phc_text = phc.0;
        let (matched, outdated) = self
            .verify_password(password.clone(), phc_text.clone())
            .await?;
        let otp_step = if matched && user.mfa_enabled {
            if let Some(key_id) = user.mfa_encryption_key_id {
                self.load_data_key(key_id).await?;
            }
            let secret = self.open_mfa_secret(&user)?;
            match (secret, otp) {
                (Some(secret), Some(code)) => totp::verify(&secret, code, at.timestamp())?
                    .filter(|step| user.mfa_last_used_step.is_none_or(|last| *step > last)),
                _ => None,
            }
        } else {
            None
        };
        let mfa_ok = !user.mfa_enabled || otp_step.is_some();
        if !matched || !mfa_ok {
            let reason = if matched {
                "wrong or reused one-time code"
            } else {
                "wrong password"
            };
            return self.count_login_failure(&user, reason, at).await;
        }
        let new_hash = if outdated {
            Some(self.hash_password(password).await?)
        } else {
            None
        };
        let token = token::new_session_token();
        let session = Session {
            id: SessionId::new(),
            session_id: format!("ses_{}", token::random_base62(20)),
            token_hash: crate::model::OpaqueText(token::sha256_hex(token.expose().as_bytes())),
            user_id: user.id,
            ip_address: context.ip_address,
            user_agent: context.user_agent,
            expires_at: crate::service::shifted(
                "security.session_ttl_seconds",
                at,
                SecuritySettings::duration(security.session_ttl_seconds),
            )?,
            idle_timeout_secs: i32::try_from(security.session_idle_seconds).unwrap_or(i32::MAX),
            last_activity_at: at,
            revoked_at: None,
            revoke_reason: None,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        let mut tx = self.databases().core.begin().await?;
        // The row read above decided nothing for good: this write happens
        // only if the account still takes logins with the same password and
        // MFA state and the code's step is still unused, and it writes only
        // the login's own columns (a concurrent disable stays).
        let recorded = users::record_login(
            &mut tx.conn(),
            &users::LoginWrite {
                id: user.id,
                at,
                verified_hash: &phc_text,
                mfa_enabled: user.mfa_enabled,
                otp_step,
                new_hash: new_hash.as_deref(),
            },
        )
        .await?;
        if !recorded {
            drop(tx); // wrote nothing: rolls back
            return self.refuse_changed_login(&user, otp_step, at).await;
        }
        sessions::insert(&mut tx.conn(), &session).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            &user_actor(&user),
            AuditEntry::new("auth.login", "login")
                .resource("session", session.id)
                .details(json!({"user_id": user.id, "session_id": session.session_id, "mfa": user.mfa_enabled})),
        )
        .await?;
        let user = store::get::<Users>(&mut tx.conn(), user.id, false).await?;
        tx.commit().await?;
        Ok(LoginOutcome {
            token,
            session,
            user,
        })
    }

    /// A credential failure: counted (and the account locked at the
    /// threshold) in one statement while the account takes logins; when it
    /// no longer does (a parallel guess locked it), refused uncounted.
    async fn count_login_failure<T>(
        &self,
        user: &User,
        reason: &str,
        at: crate::model::Timestamp,
    ) -> Result<T> {
        let security = self.config().security;
        let max_failures = i32::try_from(security.max_failed_logins).unwrap_or(i32::MAX);
        let lockout = i64::try_from(security.lockout_seconds)
            .ok()
            .and_then(Duration::try_seconds)
            .unwrap_or(Duration::MAX);
        let until = at
            .checked_add_signed(lockout)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        let mut tx = self.databases().core.begin().await?;
        let actor = user_actor(user);
        let Some(counted) =
            users::count_failed_login(&mut tx.conn(), user.id, at, max_failures, until).await?
        else {
            drop(tx); // wrote nothing: rolls back
            self.audit_login_failure(
                Some(user),
                &format!("{reason}; account locked or disabled meanwhile, not counted"),
            )
            .await?;
            return Err(bad_credentials());
        };
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            &actor,
            AuditEntry::new("auth.login_failed", "login")
                .outcome(AuditOutcome::Failure)
                .resource("user", user.id)
                .details(json!({"reason": reason, "consecutive_failures": counted.failures})),
        )
        .await?;
        if counted.locked {
            append(
                &mut tx.conn(),
                AuditLogKind::Core,
                &actor,
                AuditEntry::new("auth.account_locked", "lock")
                    .outcome(AuditOutcome::Failure)
                    .resource("user", user.id)
                    .details(
                        json!({"locked_until": until, "consecutive_failures": counted.failures}),
                    ),
            )
            .await?;
        }
        tx.commit().await?;
        Err(bad_credentials())
    }

    /// A login whose credentials were right but whose account changed
    /// before it could be recorded. A TOTP step used meanwhile (the same
    /// code in a parallel login) is a failed login like any reused code;
    /// anything else (disabled, locked, password changed) is refused as is.
    async fn refuse_changed_login<T>(
        &self,
        user: &User,
        otp_step: Option<i64>,
        at: crate::model::Timestamp,
    ) -> Result<T> {
        let now_stored = {
            let mut conn = self.databases().core.acquire().await?;
            store::get::<Users>(&mut conn.conn(), user.id, false).await
        };
        let code_reused = match (&now_stored, otp_step) {
            (Ok(stored), Some(step)) => stored.mfa_last_used_step.is_some_and(|last| last >= step),
            _ => false,
        };
        if code_reused {
            return self
                .count_login_failure(user, "wrong or reused one-time code", at)
                .await;
        }
        self.audit_login_failure(Some(user), "account changed during login")
            .await?;
        Err(bad_credentials())
    }

    async fn audit_login_failure(&self, user: Option<&User>, reason: &str) -> Result<()> {
        let actor = user.map(user_actor).unwrap_or_else(Actor::system);
        let mut entry = AuditEntry::new("auth.login_failed", "login")
            .outcome(AuditOutcome::Failure)
            .details(json!({"reason": reason}));
        if let Some(user) = user {
            entry = entry.resource("user", user.id);
        }
        let mut tx = self.databases().core.begin().await?;
        append(&mut tx.conn(), AuditLogKind::Core, &actor, entry).await?;
        tx.commit().await
    }

    /// Resolves the actor behind a session token: the session must be
    /// unrevoked, within its absolute and idle timeouts, and its user active.
    #[tracing::instrument(skip_all, fields(organization), err(level = "info"))]
    pub async fn validate_session(&self, session_token: &str) -> Result<Actor> {
        let invalid = || Error::Authentication("session is invalid or has expired".into());
        if !session_token.starts_with("clms_") || session_token.len() != 48 {
            return Err(invalid());
        }
        let hash = token::sha256_hex(session_token.as_bytes());
        let mut conn = self.databases().core.acquire().await?;
        let session = sessions::get_by_token_hash(&mut conn.conn(), &hash)
            .await
            .map_err(|_| invalid())?;
        if !token::digests_equal(&session.token_hash.0, &hash) {
            return Err(invalid());
        }
        let at = now();
        let idle_deadline = session
            .last_activity_at
            .checked_add_signed(Duration::seconds(i64::from(session.idle_timeout_secs)))
            .unwrap_or(session.last_activity_at);
        if session.revoked_at.is_some() || session.expires_at <= at || idle_deadline <= at {
            return Err(invalid());
        }
        let user = store::get::<Users>(&mut conn.conn(), session.user_id, false)
            .await
            .map_err(|_| invalid())?;
        if user.status != UserStatus::Active {
            return Err(invalid());
        }
        sessions::touch(&mut conn.conn(), session.id, at).await?;
        let mut actor = self.resolve_user_actor(&mut conn.conn(), user.id).await?;
        actor.session_id = Some(session.id);
        Ok(actor)
    }

    /// The actor of an active user (for hosts that authenticate elsewhere).
    #[tracing::instrument(skip_all, fields(organization), err(level = "info"))]
    pub async fn actor_for_user(&self, user_id: UserId) -> Result<Actor> {
        let mut conn = self.databases().core.acquire().await?;
        let user = store::get::<Users>(&mut conn.conn(), user_id, false).await?;
        if user.status != UserStatus::Active {
            return Err(Error::Authentication(format!(
                "user {} is {}",
                user.username, user.status
            )));
        }
        self.resolve_user_actor(&mut conn.conn(), user_id).await
    }

    /// Ends the session of a token (logout).
    #[tracing::instrument(skip_all, fields(organization), err(level = "info"))]
    pub async fn logout(&self, session_token: &str) -> Result<()> {
        let actor = self.validate_session(session_token).await?;
        let id = actor
            .session_id
            .ok_or_else(|| Error::Internal("session actor without session".into()))?;
        let mut tx = self.databases().core.begin().await?;
        sessions::revoke(&mut tx.conn(), id, "logout", now()).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            &actor,
            AuditEntry::new("auth.logout", "logout").resource("session", id),
        )
        .await?;
        tx.commit().await
    }

    /// Revokes one session: its user in person, or an actor allowed to
    /// update users with containment over its user.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn revoke_session(&self, actor: &Actor, id: SessionId) -> Result<()> {
        let session = {
            let mut conn = self.databases().core.acquire().await?;
            store::get::<sessions::Sessions>(&mut conn.conn(), id, false).await
        };
        let session = match session {
            Ok(session) => session,
            Err(Error::NotFound { .. }) => return Err(Error::not_found("session", id)),
            Err(other) => return Err(other),
        };
        if !self.acts_in_person_for(actor, session.user_id) {
            match self
                .authorize_user(actor, "update", session.user_id, false)
                .await
            {
                Err(Error::NotFound { .. }) => return Err(Error::not_found("session", id)),
                other => other?,
            };
        }
        if session.revoked_at.is_some() {
            return Err(Error::conflict(format!(
                "session {} is already revoked",
                session.session_id
            )));
        }
        let mut tx = self.databases().core.begin().await?;
        sessions::revoke(&mut tx.conn(), id, "revoked", now()).await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("session.revoked", "revoke").resource("session", id),
        )
        .await
    }

    /// Revokes every session of a user; returns how many were open.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn revoke_user_sessions(&self, actor: &Actor, user_id: UserId) -> Result<u64> {
        if !self.acts_in_person_for(actor, user_id) {
            self.authorize_user(actor, "update", user_id, false).await?;
        }
        let mut tx = self.databases().core.begin().await?;
        let revoked =
            sessions::revoke_all_for_user(&mut tx.conn(), user_id, "revoked", now()).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new("session.revoked_all", "revoke")
                .resource("user", user_id)
                .details(json!({"sessions": revoked})),
        )
        .await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// The user `user_id` acting in person (not through a key): may end
    /// their own sessions without any permission.
    fn acts_in_person_for(&self, actor: &Actor, user_id: UserId) -> bool {
        actor.kind == ActorKind::User(user_id)
    }

    /// Deletes expired and revoked sessions; returns how many.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn purge_expired_sessions(&self, actor: &Actor) -> Result<u64> {
        self.authorize(actor, Access::new("system", "lifecycle"))
            .await?;
        let mut tx = self.databases().core.begin().await?;
        let purged = sessions::purge_expired(&mut tx.conn(), now()).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new("session.purged", "delete").details(json!({"sessions": purged})),
        )
        .await?;
        tx.commit().await?;
        Ok(purged)
    }

    /// Creates an API key for the acting user. Nothing minted is wider
    /// than its minter: scopes within what the actor holds, and a key
    /// creating a key passes on its own organization and expiry as bounds.
    /// The key text is returned once.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn create_api_key(&self, actor: &Actor, new: NewApiKey) -> Result<CreatedApiKey> {
        self.authorize(
            actor,
            Access::new("api_keys", "create")
                .in_org(new.organization_id)
                .own(),
        )
        .await?;
        let user_id = actor.user_id().ok_or_else(|| {
            Error::invalid(
                "actor",
                "API keys belong to a user; the system actor has none",
            )
        })?;
        if new.name.trim().is_empty() {
            return Err(Error::invalid("name", "is required"));
        }
        let at = now();
        if new.expires_at.is_some_and(|e| e <= at) {
            return Err(Error::invalid("expires_at", "must be in the future"));
        }
        let scopes = match new.scopes {
            Some(scopes) => {
                scopes.validate()?;
                scopes
            }
            None => actor.grants().union(),
        };
        if let Some(reason) =
            actor.key_minting_problem(&scopes, new.organization_id, new.expires_at)
        {
            return Err(self
                .refuse(
                    actor,
                    Access::new("api_keys", "create").in_org(new.organization_id),
                    &format!("API key with {reason}"),
                )
                .await);
        }
        let (key_id, key) = token::new_api_key();
        let api_key = ApiKey {
            id: ApiKeyId::new(),
            key_id,
            key_hash: crate::model::OpaqueText(token::sha256_hex(key.expose().as_bytes())),
            name: new.name.trim().to_string(),
            user_id,
            organization_id: new.organization_id,
            scopes: sqlx::types::Json(scopes),
            expires_at: new.expires_at.map(store::truncate_micros),
            last_used_at: None,
            revoked_at: None,
            revoked_by_user_id: None,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        let mut tx = self.databases().core.begin().await?;
        api_keys::insert(&mut tx.conn(), &api_key).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new("api_key.created", "create")
                .resource("api_key", api_key.id)
                .org(new.organization_id)
                .details(json!({"key_id": api_key.key_id, "name": api_key.name})),
        )
        .await?;
        tx.commit().await?;
        Ok(CreatedApiKey { key, api_key })
    }

    /// Resolves the actor behind an API key. Malformed keys are refused
    /// before any lookup; hashes compare in constant time; expired or revoked
    /// keys and inactive users are refused.
    #[tracing::instrument(skip_all, fields(organization), err(level = "info"))]
    pub async fn authenticate_api_key(&self, presented: &str) -> Result<Actor> {
        let key_id = token::parse_api_key(presented)?;
        let invalid = || Error::Authentication("API key is invalid, expired or revoked".into());
        let mut conn = self.databases().core.acquire().await?;
        let api_key = api_keys::get_by_key_id(&mut conn.conn(), &key_id)
            .await
            .map_err(|_| invalid())?;
        let hash = token::sha256_hex(presented.as_bytes());
        if !token::digests_equal(&api_key.key_hash.0, &hash) {
            return Err(invalid());
        }
        let at = now();
        if api_key.revoked_at.is_some() || api_key.expires_at.is_some_and(|e| e <= at) {
            return Err(invalid());
        }
        let user = store::get::<Users>(&mut conn.conn(), api_key.user_id, false)
            .await
            .map_err(|_| invalid())?;
        if user.status != UserStatus::Active {
            return Err(invalid());
        }
        api_keys::touch_last_used(&mut conn.conn(), api_key.id, at).await?;
        let user_actor = self.resolve_user_actor(&mut conn.conn(), user.id).await?;
        // A key never grants more than its user currently holds.
        Actor::for_api_key(
            api_key.id,
            user_actor,
            KeyBounds {
                scopes: api_key.scopes.0,
                organization_id: api_key.organization_id,
                expires_at: api_key.expires_at,
            },
        )
    }

    /// Revokes an API key. Its own user may always revoke it, without any
    /// permission, so a leaked key can be stopped at once (as Vault's
    /// `revoke-self`); anyone else needs `api_keys:revoke` in the key's
    /// organization.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn revoke_api_key(&self, actor: &Actor, id: ApiKeyId) -> Result<()> {
        let api_key = {
            let mut conn = self.databases().core.acquire().await?;
            store::get::<api_keys::ApiKeys>(&mut conn.conn(), id, false).await
        };
        let api_key = match api_key {
            Ok(key) => key,
            Err(Error::NotFound { .. }) => return Err(Error::not_found("api key", id)),
            Err(other) => return Err(other),
        };
        let own = actor.user_id() == Some(api_key.user_id);
        if !own {
            self.authorize_visible(
                actor,
                Access::new("api_keys", "revoke").in_org(api_key.organization_id),
                "api key",
                id,
            )
            .await?;
        }
        if api_key.revoked_at.is_some() {
            return Err(Error::conflict(format!(
                "API key {} is already revoked",
                api_key.key_id
            )));
        }
        let mut tx = self.databases().core.begin().await?;
        api_keys::revoke(&mut tx.conn(), id, actor.user_id(), now()).await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("api_key.revoked", "revoke")
                .resource("api_key", id)
                .org(api_key.organization_id),
        )
        .await
    }

    /// The acting user's API keys (hashes never leave the library); needs
    /// `api_keys:read`, so a narrowly scoped key cannot survey the others.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn list_api_keys(&self, actor: &Actor, page: &PageRequest) -> Result<Page<ApiKey>> {
        let user_id = actor
            .user_id()
            .ok_or_else(|| Error::invalid("actor", "API keys belong to a user"))?;
        self.authorize(actor, Access::new("api_keys", "read").own())
            .await?;
        let mut conn = self.databases().acquire_core_read().await?;
        api_keys::list_api_keys(
            &mut conn.conn(),
            &api_keys::ApiKeyFilter {
                user_id: Some(user_id),
                ..Default::default()
            },
            page,
        )
        .await
    }
}

/// An argon2id hash of a random string, verified against when the user does
/// not exist so both paths cost the same.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0mZyHVOZ6U0J3dBq5P2bOQ0Aq4cN0Bq4v7sQ3u0qj9s";

/// A user as the author of their own login events (no permissions).
fn user_actor(user: &User) -> Actor {
    Actor::new(ActorKind::User(user.id), Grants::default(), Vec::new())
}
