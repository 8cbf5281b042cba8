//! The operation table: one entry per operation, grouped by the core module
//! that implements it. Each entry declares its named arguments (parsed with
//! `deny_unknown_fields`, so a misspelt argument is refused by name), what
//! it returns, and the call it makes; the macro turns the entries into
//! [`OPERATIONS`], the dispatcher and the description, so none can drift.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::inputs::{ImportInput, IssueInput, MasterKeyInput, OpenOptions};
use super::records::{ClmHandle, CreatedApiKey, CsrBundle, LoginResult, MfaEnrollment, SecretText};
use super::{Operation, ProgressSink, Reply, describe_actor, progress_value, record};
use crate::crypto::{
    DistinguishedName, KeyAlgorithm, KeyPair, PemLabel, SecretString, build_csr, der_to_pem,
};
use crate::model::{
    ActiveCertificate, ActiveUserWithRoles, ApiKey, AuditEvent, CaRollover, Certificate,
    CertificateRevocation, CertificateSummary, ExpiringCertificate, KeyRotation, Notification,
    Organization, PendingApproval, Permissions, Policy, Role, User, UserRole, Workflow,
};
use crate::model::{
    ApiKeyId, CertificateId, NotificationId, OrganizationId, OrganizationStatus, PolicyId,
    RevocationReason, RoleId, SessionId, SubjectAlternativeName, UserId, WorkflowId,
    WorkflowInstanceId,
};
use crate::service::access::{NewOrganization, NewRole};
use crate::service::audit::{ArchiveReport, AuditCheckpoint, ChainReport};
use crate::service::authorities::{CertificateAuthority, NewCertificateAuthority};
use crate::service::certificates::ReconcileReport;
use crate::service::exports::{
    CertificateExport, CertificateFormat, KeyFormat, Pkcs12Export, Pkcs12Options,
    PrivateKeyExportOptions,
};
use crate::service::identity::{LoginContext, NewApiKey, NewUser, UserUpdate};
use crate::service::inventory::{
    CertificateSearch, ImportOptions, ImportProgress, ImportReport, ImportSummary,
    StatusRefreshReport,
};
use crate::service::issuance::{DryRunReport, IssuanceOutcome, RenewOptions};
use crate::service::lifecycle::LifecycleReport;
use crate::service::maintenance::{DatabaseStatsReport, MaintainOptions, MaintenanceReport};
use crate::service::ocsp::OcspReply;
use crate::service::policies::{NewPolicy, PolicyUpdate};
use crate::service::revocation::{CrlSummary, GeneratedCrl};
use crate::service::rollover::{
    RolloverOptions, RolloverPlan, RolloverProgress, RolloverReport, RolloverRun,
};
use crate::service::rotation::{DataKeyStatus, RotationOptions, RotationProgress, RotationReport};
use crate::service::views::{ExpiringWithinDays, ViewFilter};
use crate::service::workflows::{NewWorkflow, WorkflowInstanceView};
use crate::store::audit::{AuditFilter, AuditLogKind};
use crate::store::policies::PolicyFilter;
use crate::store::users::UserFilter;
use crate::store::{Page, PageRequest};
use crate::{Actor, Clm, Error, Result};

/// True when a parameter's Rust type is an `Option`.
const fn is_option(rust_type: &str) -> bool {
    let bytes = rust_type.as_bytes();
    let prefix = b"Option";
    if bytes.len() < prefix.len() {
        return false;
    }
    let mut index = 0;
    while index < prefix.len() {
        if bytes[index] != prefix[index] {
            return false;
        }
        index = index.saturating_add(1);
    }
    true
}

fn required(actor: Option<&Actor>) -> Result<&Actor> {
    actor.ok_or_else(|| Error::invalid("actor", "this operation needs an actor"))
}

fn actor_reply(actor: Actor) -> Result<Reply> {
    let description = describe_actor(&actor);
    Ok(Reply::Actor(actor, description))
}

fn now_or(at: Option<DateTime<Utc>>) -> DateTime<Utc> {
    at.unwrap_or_else(Utc::now)
}

macro_rules! operations {
    (
        $clm:ident, $actor:ident, $progress:ident;
        $(
            $(#[doc = $doc:literal])+
            $module:ident $who:ident $([progress: $progress_ty:ty])? $name:ident (
                $( $(#[$attr:meta])* $arg:ident : $ty:ty $(= $default:ident)? ),* $(,)?
            ) -> $ret:ty => $body:expr;
        )*
    ) => {
        /// Every operation the bindings expose, grouped by core module.
        pub static OPERATIONS: &[Operation] = &[
            $( Operation {
                name: stringify!($name),
                module: stringify!($module),
                summary: concat!($($doc),+),
                needs_actor: operations!(@needs $who),
            } ),*
        ];

        /// Each operation as data: its arguments' and its result's schemas
        /// (their named types land in `generator`'s definitions).
        pub(super) fn describe_operations(
            generator: &mut schemars::SchemaGenerator,
        ) -> Vec<Value> {
            vec![ $( {
                let arguments: Vec<Value> = vec![ $(
                    operations!(@argument generator, $arg, $ty $(, $default)?)
                ),* ];
                let progress = operations!(@progress generator $(, $progress_ty)?);
                json!({
                    "name": stringify!($name),
                    "module": stringify!($module),
                    "summary": super::summary(&[$($doc),+]),
                    "needs_actor": operations!(@needs $who),
                    "arguments": arguments,
                    "result": generator.subschema_for::<$ret>(),
                    "result_kind": super::result_kind(&<$ret as schemars::JsonSchema>::schema_name()),
                    "progress": progress,
                })
            } ),* ]
        }

        pub(super) async fn dispatch(
            $clm: &Clm,
            actor: Option<&Actor>,
            name: &str,
            input: Value,
            $progress: Option<ProgressSink<'_>>,
        ) -> Result<Reply> {
            match name {
                // Each operation is its own boxed future, made in its own
                // frame: one `match` awaiting every body in place is a poll
                // function whose unoptimised frame holds every arm's locals
                // at once (over a megabyte in debug builds), enough to
                // overflow a host thread's stack.
                $( stringify!($name) => {
                    let operation = move || Box::pin(async move {
                        #[derive(serde::Deserialize)]
                        #[serde(deny_unknown_fields)]
                        struct Arguments { $( $(#[serde($default)])? $(#[$attr])* $arg: $ty, )* }
                        let Arguments { $($arg),* } = super::arguments(stringify!($name), input)?;
                        operations!(@bind $who, $actor, actor);
                        $body
                    });
                    operation().await
                } )*
                other => Err(Error::invalid(
                    "operation",
                    format!("{other:?} is not an operation of clm"),
                )),
            }
        }
    };
    (@needs acting) => { true };
    (@needs anyone) => { false };
    (@has_default) => { false };
    (@has_default $default:ident) => { true };
    (@argument $generator:ident, $arg:ident, $ty:ty) => {
        json!({
            "name": stringify!($arg),
            "schema": $generator.subschema_for::<$ty>(),
            "required": !is_option(stringify!($ty)),
        })
    };
    (@argument $generator:ident, $arg:ident, $ty:ty, $default:ident) => {
        json!({
            "name": stringify!($arg),
            "schema": $generator.subschema_for::<$ty>(),
            "required": false,
            "default": serde_json::to_value(<$ty as Default>::default()).unwrap_or(Value::Null),
        })
    };
    (@progress $generator:ident) => { None::<schemars::Schema> };
    (@progress $generator:ident, $progress_ty:ty) => {
        Some($generator.subschema_for::<$progress_ty>())
    };
    (@bind acting, $actor:ident, $given:ident) => { let $actor = required($given)?; };
    (@bind anyone, $actor:ident, $given:ident) => { let $actor = $given; let _ = $actor; };
}

operations! { clm, actor, progress;
    // ---- the handle -------------------------------------------------------
    /// Opens clm (the binding's constructor; see `OpenOptions`).
    handle anyone open(options: OpenOptions) -> ClmHandle => {
        // The binding opens before it has a handle to call on.
        let _ = options;
        Err(Error::invalid(
            "operation",
            "open is the binding's constructor, not a call on an open handle",
        ))
    };
    /// Closes every pool; later calls fail with Closed.
    handle anyone close() -> () => { clm.close().await; record(&()) };
    /// The library version.
    handle anyone version() -> String => record(&super::version());
    /// The system actor, for host-process work (setup, lifecycle runs).
    handle anyone system_actor() -> Actor => actor_reply(clm.system_actor());

    // ---- identity ---------------------------------------------------------
    /// Creates a user (with a password, or none for SSO-only users).
    identity acting create_user(new: NewUser) -> User =>
        record(&clm.create_user(actor, new).await?);
    /// One user by id.
    identity acting get_user(id: UserId) -> User => record(&clm.get_user(actor, id).await?);
    /// One user by username.
    identity acting get_user_by_username(username: String) -> User =>
        record(&clm.get_user_by_username(actor, &username).await?);
    /// Users, filtered and paginated.
    identity acting list_users(filter: UserFilter = default, page: PageRequest = default)
        -> Page<User> => record(&clm.list_users(actor, &filter, &page).await?);
    /// Changes a user's email, display name or status.
    identity acting update_user(id: UserId, update: UserUpdate) -> User =>
        record(&clm.update_user(actor, id, update).await?);
    /// Soft-deletes a user and ends their sessions.
    identity acting delete_user(id: UserId) -> () => record(&clm.delete_user(actor, id).await?);
    /// Restores a soft-deleted user.
    identity acting restore_user(id: UserId) -> User => record(&clm.restore_user(actor, id).await?);
    /// Resets another user's password (containment over them; ends their sessions).
    identity acting set_password(id: UserId, new_password: SecretString) -> () =>
        record(&clm.set_password(actor, id, new_password).await?);
    /// Changes the acting user's own password: in person, with the current
    /// password (and a one-time code when MFA is on); ends the other sessions.
    identity acting change_password(
        current_password: SecretString,
        new_password: SecretString,
        otp: Option<String>,
    ) -> () =>
        record(&clm.change_password(actor, current_password, new_password, otp.as_deref()).await?);
    /// Lifts a lockout.
    identity acting unlock_user(id: UserId) -> User => record(&clm.unlock_user(actor, id).await?);
    /// Starts TOTP enrollment for the acting user (in person, with the
    /// current password): the secret is shown once.
    identity acting begin_mfa_enrollment(current_password: SecretString) -> MfaEnrollment => {
        let enrollment = clm.begin_mfa_enrollment(actor, current_password).await?;
        record(&MfaEnrollment {
            secret_base32: enrollment.secret_base32.expose().to_string(),
            provisioning_uri: enrollment.provisioning_uri.expose().to_string(),
        })
    };
    /// Confirms TOTP enrollment with a current code.
    identity acting confirm_mfa_enrollment(code: String) -> () =>
        record(&clm.confirm_mfa_enrollment(actor, &code).await?);
    /// Turns MFA off: one's own with the current password and a one-time
    /// code; another user's with containment over them.
    identity acting disable_mfa(
        id: UserId,
        current_password: Option<SecretString>,
        otp: Option<String>,
    ) -> () => record(&clm.disable_mfa(actor, id, current_password, otp.as_deref()).await?);
    /// Logs in by username or email: the session token is shown this once.
    identity anyone authenticate(
        login: String,
        password: SecretString,
        otp: Option<String>,
        ip_address: Option<String>,
        user_agent: Option<String>,
    ) -> LoginResult => {
        let context = LoginContext { ip_address, user_agent };
        let outcome = clm
            .authenticate(&login, password, otp.as_deref(), context)
            .await?;
        record(&LoginResult {
            token: outcome.token.expose().to_string(),
            session: outcome.session,
            user: outcome.user,
        })
    };
    /// The actor behind a session token (absolute and idle timeouts apply).
    identity anyone validate_session(token: SecretString) -> Actor =>
        actor_reply(clm.validate_session(token.expose()).await?);
    /// An actor for a user, for host processes acting on a user's behalf.
    identity anyone actor_for_user(user_id: UserId) -> Actor =>
        actor_reply(clm.actor_for_user(user_id).await?);
    /// Ends the session of a token.
    identity anyone logout(token: SecretString) -> () => record(&clm.logout(token.expose()).await?);
    /// Revokes one session.
    identity acting revoke_session(id: SessionId) -> () =>
        record(&clm.revoke_session(actor, id).await?);
    /// Revokes every session of a user; returns how many.
    identity acting revoke_user_sessions(user_id: UserId) -> u64 =>
        record(&clm.revoke_user_sessions(actor, user_id).await?);
    /// Deletes expired sessions; returns how many.
    identity acting purge_expired_sessions() -> u64 =>
        record(&clm.purge_expired_sessions(actor).await?);
    /// Creates an API key: the key is shown this once.
    identity acting create_api_key(new: NewApiKey) -> CreatedApiKey => {
        let created = clm.create_api_key(actor, new).await?;
        record(&CreatedApiKey {
            key: created.key.expose().to_string(),
            api_key: created.api_key,
        })
    };
    /// The actor behind an API key.
    identity anyone authenticate_api_key(key: SecretString) -> Actor =>
        actor_reply(clm.authenticate_api_key(key.expose()).await?);
    /// Revokes an API key.
    identity acting revoke_api_key(id: ApiKeyId) -> () =>
        record(&clm.revoke_api_key(actor, id).await?);
    /// API keys (never their secrets), paginated.
    identity acting list_api_keys(page: PageRequest = default) -> Page<ApiKey> =>
        record(&clm.list_api_keys(actor, &page).await?);

    // ---- access: roles and organizations -----------------------------------
    /// Creates a custom role (never wider than the creator's permissions).
    access acting create_role(new: NewRole) -> Role =>
        record(&clm.create_role(actor, new).await?);
    /// One role by id.
    access acting get_role(id: RoleId) -> Role => record(&clm.get_role(actor, id).await?);
    /// One role by code.
    access acting get_role_by_code(code: String) -> Role =>
        record(&clm.get_role_by_code(actor, &code).await?);
    /// Roles, paginated.
    access acting list_roles(page: PageRequest = default) -> Page<Role> =>
        record(&clm.list_roles(actor, &page).await?);
    /// Replaces a custom role's permissions.
    access acting update_role_permissions(
        id: RoleId,
        #[serde(deserialize_with = "crate::model::documents::document")] permissions: Permissions,
    ) -> Role => record(&clm.update_role_permissions(actor, id, permissions).await?);
    /// Soft-deletes a custom role.
    access acting delete_role(id: RoleId) -> () => record(&clm.delete_role(actor, id).await?);
    /// Grants a role to a user.
    access acting assign_role(user_id: UserId, role_id: RoleId) -> UserRole =>
        record(&clm.assign_role(actor, user_id, role_id).await?);
    /// Revokes a role from a user.
    access acting revoke_role(user_id: UserId, role_id: RoleId) -> () =>
        record(&clm.revoke_role(actor, user_id, role_id).await?);
    /// Creates an organization.
    access acting create_organization(new: NewOrganization) -> Organization =>
        record(&clm.create_organization(actor, new).await?);
    /// One organization by id.
    access acting get_organization(id: OrganizationId) -> Organization =>
        record(&clm.get_organization(actor, id).await?);
    /// Organizations, paginated.
    access acting list_organizations(page: PageRequest = default) -> Page<Organization> =>
        record(&clm.list_organizations(actor, &page).await?);
    /// Activates, suspends or archives an organization.
    access acting set_organization_status(id: OrganizationId, status: OrganizationStatus)
        -> Organization => record(&clm.set_organization_status(actor, id, status).await?);
    /// Adds a user to an organization with a membership role.
    access acting add_organization_member(
        organization_id: OrganizationId,
        user_id: UserId,
        membership_role: String,
    ) -> () => record(
        &clm.add_organization_member(actor, organization_id, user_id, &membership_role).await?,
    );
    /// Removes a user from an organization.
    access acting remove_organization_member(organization_id: OrganizationId, user_id: UserId)
        -> () => record(&clm.remove_organization_member(actor, organization_id, user_id).await?);

    // ---- policies ----------------------------------------------------------
    /// Creates a certificate policy.
    policies acting create_policy(new: NewPolicy) -> Policy =>
        record(&clm.create_policy(actor, new).await?);
    /// One policy by id.
    policies acting get_policy(id: PolicyId) -> Policy => record(&clm.get_policy(actor, id).await?);
    /// One policy by code.
    policies acting get_policy_by_code(code: String) -> Policy =>
        record(&clm.get_policy_by_code(actor, &code).await?);
    /// Policies, filtered and paginated.
    policies acting list_policies(
        filter: PolicyFilter = default,
        page: PageRequest = default,
    ) -> Page<Policy> => record(&clm.list_policies(actor, &filter, &page).await?);
    /// Changes a policy (a rules change bumps its version).
    policies acting update_policy(id: PolicyId, update: PolicyUpdate) -> Policy =>
        record(&clm.update_policy(actor, id, update).await?);
    /// Soft-deletes a policy.
    policies acting delete_policy(id: PolicyId) -> () =>
        record(&clm.delete_policy(actor, id).await?);
    /// Restores a soft-deleted policy.
    policies acting restore_policy(id: PolicyId) -> Policy =>
        record(&clm.restore_policy(actor, id).await?);

    // ---- certificate authorities ---------------------------------------------
    /// Creates a self-signed root CA.
    authorities acting create_root_ca(new: NewCertificateAuthority) -> CertificateAuthority =>
        record(&clm.create_root_ca(actor, new).await?);
    /// Creates an intermediate CA signed by a CA in clm.
    authorities acting create_intermediate_ca(issuer_id: CertificateId, new: NewCertificateAuthority)
        -> CertificateAuthority =>
        record(&clm.create_intermediate_ca(actor, issuer_id, new).await?);
    /// Every CA the actor can see.
    authorities acting list_authorities() -> Vec<CertificateAuthority> =>
        record(&clm.list_authorities(actor).await?);

    // ---- CA rollover -------------------------------------------------------------
    /// A dry run of a CA rollover: the stages and how many certificates each touches.
    rollover acting plan_ca_rollover(ca_id: CertificateId, options: RolloverOptions = default)
        -> RolloverPlan => record(&clm.plan_ca_rollover(actor, ca_id, options).await?);
    /// Starts or resumes a CA rollover: successor, cross certificates, trust bundle,
    /// switch, leaves reissued in batches, old CA retired.
    rollover acting [progress: RolloverProgress] run_ca_rollover(
        ca_id: CertificateId,
        options: RolloverOptions = default,
        batch_size: Option<u32>,
        max_batches: Option<u32>,
    ) -> RolloverReport => {
        let report_progress = move |step: RolloverProgress| {
            if let Some(sink) = progress {
                sink(progress_value(step));
            }
        };
        let mut run = RolloverRun {
            progress: Some(&report_progress),
            max_batches,
            ..RolloverRun::default()
        };
        if let Some(batch_size) = batch_size {
            run.batch_size = batch_size;
        }
        record(&clm.run_ca_rollover(actor, ca_id, options, run).await?)
    };
    /// The newest rollover of a CA: stage, progress and trust bundle (PEM).
    rollover acting ca_rollover_status(ca_id: CertificateId) -> CaRollover =>
        record(&clm.ca_rollover_status(actor, ca_id).await?);

    // ---- issuance ------------------------------------------------------------
    /// Issues a certificate under policy (or queues it for approval).
    issuance acting issue_certificate(request: IssueInput) -> IssuanceOutcome =>
        record(&clm.issue_certificate(actor, request.try_into()?).await?);
    /// What issue_certificate would issue, and which rules pass or fail.
    issuance acting dry_run_issuance(request: IssueInput) -> DryRunReport =>
        record(&clm.dry_run_issuance(actor, request.try_into()?).await?);
    /// Renews a certificate (new key unless reuse_key).
    issuance acting renew_certificate(certificate_id: CertificateId, options: RenewOptions = default)
        -> IssuanceOutcome =>
        record(&clm.renew_certificate(actor, certificate_id, options).await?);
    /// Generates a key and a PKCS#10 CSR for it, outside any database.
    issuance anyone create_csr(
        subject: DistinguishedName = default,
        sans: Vec<SubjectAlternativeName> = default,
        key_algorithm: Option<KeyAlgorithm>,
    ) -> CsrBundle => {
        let algorithm = key_algorithm.unwrap_or(KeyAlgorithm::EcdsaP256);
        let built = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, SecretString)> {
            let key = KeyPair::generate(algorithm)?;
            Ok((build_csr(&subject, &sans, &key)?, key.to_pkcs8_pem()))
        })
        .await
        .map_err(|err| Error::Internal(format!("CSR task failed: {err}")))?;
        let (csr_der, key_pem) = built?;
        record(&CsrBundle {
            csr_pem: der_to_pem(PemLabel::CertificateRequest, &csr_der),
            private_key_pem: key_pem.expose().to_string(),
        })
    };

    // ---- exports -------------------------------------------------------------
    /// A certificate as PEM, DER, a PEM chain (up to the root) or PKCS#7 certs-only (audited).
    exports acting export_certificate(certificate_id: CertificateId, format: CertificateFormat = default)
        -> CertificateExport =>
        record(&clm.export_certificate(actor, certificate_id, format).await?);
    /// Certificate, chain and private key as PKCS#12 under a password (audited; needs certificates:export).
    exports acting export_pkcs12(
        certificate_id: CertificateId,
        password: SecretString,
        options: Pkcs12Options = default,
    ) -> Pkcs12Export =>
        record(&clm.export_pkcs12(actor, certificate_id, password, options).await?);
    /// A private key as PKCS#8: PEM text, or base64 of the DER; encrypted (PBES2) with a password.
    exports acting export_private_key(
        certificate_id: CertificateId,
        options: PrivateKeyExportOptions = default,
    ) -> SecretText => {
        let export = clm.export_private_key_with(actor, certificate_id, options).await?;
        let text = match export.format {
            KeyFormat::Pem => std::str::from_utf8(export.data.expose())
                .map_err(|_| Error::Internal("a PEM key is not UTF-8".into()))?
                .to_string(),
            KeyFormat::Der => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(export.data.expose())
            }
        };
        Ok(Reply::Value(Value::String(text)))
    };

    // ---- inventory -----------------------------------------------------------
    /// Imports PEM, DER or bundles, optionally with the one certificate's key.
    inventory acting import_certificates(request: ImportInput) -> ImportReport =>
        record(&clm.import_certificates(actor, request.try_into()?).await?);
    /// Imports a PEM bundle of any size (or one DER certificate) from a file on the host, in
    /// bounded memory: read, checked and written a chunk at a time, with progress after each
    /// written chunk.
    inventory acting [progress: ImportProgress] import_certificates_from_file(
        path: String,
        organization_id: Option<OrganizationId>,
        owner_user_id: Option<UserId>,
    ) -> ImportSummary => {
        let report_progress = move |step: ImportProgress| {
            if let Some(sink) = progress {
                sink(progress_value(step));
            }
        };
        let options = ImportOptions {
            organization_id,
            owner_user_id,
            progress: Some(&report_progress),
        };
        record(&clm.import_certificates_from_file(actor, &path, options).await?)
    };
    /// One certificate by id.
    inventory acting get_certificate(id: CertificateId) -> Certificate =>
        record(&clm.get_certificate(actor, id).await?);
    /// One certificate by its business id (the SHA-256 fingerprint).
    inventory acting get_certificate_by_certificate_id(certificate_id: String) -> Certificate =>
        record(&clm.get_certificate_by_certificate_id(actor, &certificate_id).await?);
    /// A certificate as PEM.
    inventory acting get_certificate_pem(id: CertificateId) -> String =>
        record(&clm.get_certificate_pem(actor, id).await?);
    /// Searches the inventory, paginated.
    inventory acting search_certificates(search: CertificateSearch = default, page: PageRequest = default)
        -> Page<Certificate> =>
        record(&clm.search_certificates(actor, &search, &page).await?);
    /// A certificate and its issuers up to the root.
    inventory acting certificate_chain(id: CertificateId) -> Vec<Certificate> =>
        record(&clm.certificate_chain(actor, id).await?);
    /// Soft-deletes a certificate from the inventory.
    inventory acting delete_certificate(id: CertificateId) -> () =>
        record(&clm.delete_certificate(actor, id).await?);
    /// Restores a soft-deleted certificate.
    inventory acting restore_certificate(id: CertificateId) -> Certificate =>
        record(&clm.restore_certificate(actor, id).await?);
    /// Moves statuses forward as of `at` (default now); reports counts.
    inventory acting refresh_certificate_statuses(at: Option<DateTime<Utc>>)
        -> StatusRefreshReport =>
        record(&clm.refresh_certificate_statuses(actor, now_or(at)).await?);
    /// Repairs rows a crash left half-written between the two databases.
    certificates acting reconcile() -> ReconcileReport => record(&clm.reconcile(actor).await?);

    // ---- revocation and CRLs -------------------------------------------------
    /// Revokes a certificate (certificate_hold suspends it).
    revocation acting revoke_certificate(
        id: CertificateId,
        reason: RevocationReason,
        comment: Option<String>,
    ) -> CertificateRevocation =>
        record(&clm.revoke_certificate(actor, id, reason, comment).await?);
    /// Releases a certificate_hold.
    revocation acting release_certificate_hold(id: CertificateId) -> Certificate =>
        record(&clm.release_certificate_hold(actor, id).await?);
    /// Generates the next CRL of an issuer and stores it; returns its summary (read it with latest_crl).
    revocation acting generate_crl(issuer_id: CertificateId, next_update_hours: Option<u32>)
        -> CrlSummary => record(&clm.generate_crl(actor, issuer_id, next_update_hours).await?);
    /// Generates the next CRL of one partition of an issuer, or a delta CRL; returns its summary.
    revocation acting generate_scoped_crl(
        issuer_id: CertificateId,
        partition: Option<u32>,
        delta: Option<bool>,
        next_update_hours: Option<u32>,
    ) -> CrlSummary => record(
        &clm.generate_scoped_crl(actor, issuer_id, partition, delta.unwrap_or(false), next_update_hours)
            .await?,
    );
    /// The latest stored CRL of an issuer (or of a partition; complete or delta), to serve.
    revocation acting latest_crl(
        issuer_id: CertificateId,
        partition: Option<u32>,
        delta: Option<bool>,
    ) -> GeneratedCrl =>
        record(&clm.latest_crl(actor, issuer_id, partition, delta.unwrap_or(false)).await?);

    // ---- OCSP ------------------------------------------------------------------
    /// Answers an OCSP request (DER in base64) with an OCSP response (DER in base64); public, never fails.
    ocsp anyone ocsp_respond(request_der_base64: String) -> OcspReply =>
        record(&clm.ocsp_reply(&request_der_base64).await?);

    // ---- key rotation ----------------------------------------------------------
    /// Rotates the data key, re-sealing every private key in batches; resumes an interrupted run.
    rotation acting [progress: RotationProgress] rotate_data_key(batch_size: Option<u32>, max_batches: Option<u32>)
        -> RotationReport => {
        let report_progress = move |step: RotationProgress| {
            if let Some(sink) = progress {
                sink(progress_value(step));
            }
        };
        let mut options = RotationOptions {
            progress: Some(&report_progress),
            max_batches,
            ..RotationOptions::default()
        };
        if let Some(batch_size) = batch_size {
            options.batch_size = batch_size;
        }
        record(&clm.rotate_data_key(actor, options).await?)
    };
    /// Re-wraps every data key under a new master key.
    rotation acting rotate_master_key(new_master_key: MasterKeyInput) -> RotationReport =>
        record(&clm.rotate_master_key(actor, new_master_key.into_source()?).await?);
    /// The data keys and what is still sealed under each.
    rotation acting key_status() -> Vec<DataKeyStatus> => record(&clm.key_status(actor).await?);
    /// Rotation history, paginated.
    rotation acting list_key_rotations(page: PageRequest = default) -> Page<KeyRotation> =>
        record(&clm.list_key_rotations(actor, &page).await?);

    // ---- workflows and approvals -----------------------------------------------
    /// Creates an approval workflow.
    workflows acting create_workflow(new: NewWorkflow) -> Workflow =>
        record(&clm.create_workflow(actor, new).await?);
    /// One workflow by id.
    workflows acting get_workflow(id: WorkflowId) -> Workflow =>
        record(&clm.get_workflow(actor, id).await?);
    /// One workflow by code.
    workflows acting get_workflow_by_code(code: String) -> Workflow =>
        record(&clm.get_workflow_by_code(actor, &code).await?);
    /// Workflows, paginated.
    workflows acting list_workflows(page: PageRequest = default) -> Page<Workflow> =>
        record(&clm.list_workflows(actor, &page).await?);
    /// Approves or rejects the current step of a workflow instance.
    workflows acting decide_approval(
        instance_id: WorkflowInstanceId,
        approve: bool,
        comment: Option<String>,
    ) -> WorkflowInstanceView =>
        record(&clm.decide_approval(actor, instance_id, approve, comment).await?);
    /// Retries a failed workflow instance.
    workflows acting retry_workflow(instance_id: WorkflowInstanceId) -> WorkflowInstanceView =>
        record(&clm.retry_workflow(actor, instance_id).await?);
    /// Cancels a workflow instance.
    workflows acting cancel_workflow(instance_id: WorkflowInstanceId) -> WorkflowInstanceView =>
        record(&clm.cancel_workflow(actor, instance_id).await?);
    /// Expires instances past their deadline as of `at` (default now); returns how many.
    workflows acting expire_stale_workflows(at: Option<DateTime<Utc>>) -> u64 =>
        record(&clm.expire_stale_workflows(actor, now_or(at)).await?);
    /// The approvals waiting for the acting user.
    workflows acting pending_approvals() -> Vec<PendingApproval> =>
        record(&clm.pending_approvals(actor).await?);
    /// One workflow instance with its steps.
    workflows acting get_workflow_instance(id: WorkflowInstanceId) -> WorkflowInstanceView =>
        record(&clm.get_workflow_instance(actor, id).await?);

    // ---- the schema's views -----------------------------------------------------
    /// Certificates in service (active or expiring), without PEM, paginated.
    views acting active_certificates(filter: ViewFilter = default, page: PageRequest = default)
        -> Page<ActiveCertificate> =>
        record(&clm.active_certificates(actor, &filter, &page).await?);
    /// Certificates in service expiring within `days` (1 to 30), soonest first.
    views acting expiring_certificates(
        days: ExpiringWithinDays = default,
        page: PageRequest = default,
    ) -> Page<ExpiringCertificate> =>
        record(&clm.expiring_certificates(actor, days.0, &page).await?);
    /// Active users with their role codes and names, paginated.
    views acting active_users_with_roles(page: PageRequest = default) -> Page<ActiveUserWithRoles> =>
        record(&clm.active_users_with_roles(actor, &page).await?);
    /// Certificate metadata with owner and organization, paginated.
    views acting certificate_summary(filter: ViewFilter = default, page: PageRequest = default)
        -> Page<CertificateSummary> =>
        record(&clm.certificate_summary(actor, &filter, &page).await?);

    // ---- notifications ---------------------------------------------------------
    /// The acting user's notifications, paginated.
    notifications acting list_notifications(unread_only: bool = default, page: PageRequest = default)
        -> Page<Notification> =>
        record(&clm.list_notifications(actor, unread_only, &page).await?);
    /// Another user's notifications (needs `notifications:read`), paginated.
    notifications acting list_user_notifications(
        user_id: UserId,
        unread_only: bool = default,
        page: PageRequest = default,
    ) -> Page<Notification> =>
        record(&clm.list_user_notifications(actor, user_id, unread_only, &page).await?);
    /// Marks one notification read.
    notifications acting mark_notification_read(id: NotificationId) -> () =>
        record(&clm.mark_notification_read(actor, id).await?);
    /// Marks all the acting user's notifications read; returns how many.
    notifications acting mark_all_notifications_read() -> u64 =>
        record(&clm.mark_all_notifications_read(actor).await?);
    /// The delivery outbox: notifications not yet delivered, oldest first.
    notifications acting fetch_undelivered_notifications(limit: u32) -> Vec<Notification> =>
        record(&clm.fetch_undelivered_notifications(actor, limit).await?);
    /// Marks notifications delivered; returns how many.
    notifications acting mark_notifications_delivered(ids: Vec<NotificationId>) -> u64 =>
        record(&clm.mark_notifications_delivered(actor, &ids).await?);

    // ---- lifecycle ---------------------------------------------------------------
    /// One lifecycle pass as of `at` (default now): statuses, notices, auto-renewals, expiry.
    lifecycle acting run_lifecycle(at: Option<DateTime<Utc>>) -> LifecycleReport =>
        record(&clm.run_lifecycle(actor, now_or(at)).await?);

    // ---- maintenance -----------------------------------------------------------------
    /// Both databases' table and index sizes, index use, dead rows or free pages, and pool use.
    maintenance acting database_stats() -> DatabaseStatsReport =>
        record(&clm.database_stats(actor).await?);
    /// PostgreSQL ANALYZE and optional VACUUM; SQLite PRAGMA optimize, optional VACUUM,
    /// WAL checkpoint. `analyze` defaults to true. Audited; reports each step's duration.
    maintenance acting maintain(vacuum: bool = default, analyze: Option<bool>) -> MaintenanceReport =>
        record(&clm.maintain(actor, MaintainOptions {
            vacuum,
            analyze: analyze.unwrap_or(true),
        }).await?);

    // ---- audit ---------------------------------------------------------------------
    /// Audit events of one trail (`secure` or `core`), filtered and paginated.
    audit acting list_audit_events(
        log: AuditLogKind,
        filter: AuditFilter = default,
        page: PageRequest = default,
    ) -> Page<AuditEvent> =>
        record(&clm.list_audit_events(actor, log, &filter, &page).await?);
    /// Verifies a trail's hash chain; reports the first broken link.
    audit acting verify_audit_chain(log: AuditLogKind) -> ChainReport =>
        record(&clm.verify_audit_chain(actor, log).await?);
    /// A signed checkpoint of a trail's head, for the host to keep elsewhere.
    audit acting audit_checkpoint(log: AuditLogKind) -> AuditCheckpoint =>
        record(&clm.audit_checkpoint(actor, log).await?);
    /// Verifies a trail and that it still holds the head a checkpoint signed.
    audit acting verify_audit_chain_against_checkpoint(
        log: AuditLogKind,
        checkpoint: AuditCheckpoint,
    ) -> ChainReport => record(
        &clm.verify_audit_chain_against_checkpoint(actor, log, &checkpoint)
            .await?,
    );
    /// Moves events older than `older_than_days` to a JSON-lines file.
    audit acting archive_audit_events(log: AuditLogKind, older_than_days: u32, file: String)
        -> ArchiveReport => record(
        &clm.archive_audit_events(actor, log, older_than_days, std::path::Path::new(&file))
            .await?,
    );
}
