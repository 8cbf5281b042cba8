//! `Clm` and `Actor`. Every operation of `clm::api::OPERATIONS` is a method
//! of `Clm` (camelCase) that converts its arguments to JSON, runs
//! `clm::api::call` on napi's tokio runtime and resolves with the result.
//! The handle's own operations (`open`, `close`, `version`, `systemActor`)
//! and `rotateDataKey` (which takes a progress callback) are written out;
//! the others come from the list at the end of this file, whose entries
//! carry their TypeScript signatures (the records and inputs are declared in
//! `types.d.ts`, the header of the generated `index.d.ts`).

use std::sync::Mutex;

use napi::bindgen_prelude::{
    Function, PromiseRaw, ToNapiValue, TypeTag, Unknown, ValueType, validate_type_tag,
};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, JsValue, sys};
use napi_derive::napi;
use serde_json::{Map, Value};

use crate::convert::{is_absent, to_json};
use crate::errors::{Failure, js_error};

/// Who performs an operation: from `clm.systemActor()`,
/// `clm.validateSession()`, `clm.authenticateApiKey()` or
/// `clm.actorForUser()`. Opaque.
#[napi]
pub struct Actor {
    inner: clm::Actor,
}

#[napi]
impl Actor {
    /// `{kind: "user" | "api_key" | "system", user_id, session_id,
    /// api_key_id, organization_ids}`.
    #[napi(ts_return_type = "ActorDescription")]
    pub fn describe(&self) -> Value {
        clm::api::describe_actor(&self.inner)
    }

    /// Shows the description, never the actor's permissions.
    #[napi(js_name = "toJSON", ts_return_type = "ActorDescription")]
    pub fn to_json(&self) -> Value {
        self.describe()
    }
}

/// What a call resolves with: a record (plain object), an `Actor`, or
/// `undefined` for operations that return nothing.
pub enum Output {
    Value(Value),
    Actor(Actor),
    Nothing,
}

impl ToNapiValue for Output {
    unsafe fn to_napi_value(env: sys::napi_env, output: Self) -> napi::Result<sys::napi_value> {
        unsafe {
            match output {
                Output::Value(value) => Value::to_napi_value(env, value),
                Output::Actor(actor) => Actor::to_napi_value(env, actor),
                Output::Nothing => <()>::to_napi_value(env, ()),
            }
        }
    }
}

/// The progress callback of `rotateDataKey`, called from the core's thread
/// without blocking it; what the callback returns or throws is ignored.
type ProgressCallback = ThreadsafeFunction<Value, Unknown<'static>, Value, napi::Status, false>;

/// An open clm (`await Clm.open({...})`). After `close()` every call
/// rejects with code `CLOSED`.
#[napi]
pub struct Clm {
    inner: Mutex<Option<clm::Clm>>,
}

impl Clm {
    fn core(&self) -> clm::Result<clm::Clm> {
        self.inner
            .lock()
            .map_err(|_| clm::Error::Internal("the handle's lock is poisoned".into()))?
            .clone()
            .ok_or(clm::Error::Closed)
    }

    /// Runs operation `name`: converts the actor and the named arguments on
    /// the JS thread, then calls the core on the tokio runtime. Every
    /// failure, a wrong JS type included, rejects the Promise.
    fn run<'env>(
        &self,
        env: &'env Env,
        name: &'static str,
        actor: Option<Unknown<'env>>,
        args: &[(&'static str, Unknown<'env>)],
        progress: Option<ProgressCallback>,
    ) -> napi::Result<PromiseRaw<'env, Output>> {
        let prepared = prepare(env, self, actor, args);
        env.spawn_future_with_callback(
            async move {
                let (core, actor, input) = match prepared {
                    Ok(prepared) => prepared,
                    Err(failure) => return Ok(Err(failure)),
                };
                let sink = progress.map(|callback| {
                    move |step: Value| {
                        // NonBlocking: a slow callback never holds the rotation up.
                        let _ = callback.call_with_return_value(
                            step,
                            ThreadsafeFunctionCallMode::NonBlocking,
                            |_returned, _env| Ok(()),
                        );
                    }
                });
                let sink_ref = sink
                    .as_ref()
                    .map(|sink| sink as &(dyn Fn(Value) + Send + Sync));
                let reply = clm::api::call(&core, actor.as_ref(), name, input, sink_ref).await;
                Ok(reply.map_err(Failure::Core))
            },
            |env, reply| match reply {
                Ok(clm::api::Reply::Actor(actor, _)) => Ok(Output::Actor(Actor { inner: actor })),
                Ok(clm::api::Reply::Value(Value::Null)) => Ok(Output::Nothing),
                Ok(clm::api::Reply::Value(value)) => Ok(Output::Value(value)),
                Err(failure) => Err(failure.into_js(env)),
            },
        )
    }
}

type Prepared = (clm::Clm, Option<clm::Actor>, Value);

fn prepare(
    env: &Env,
    handle: &Clm,
    actor: Option<Unknown<'_>>,
    args: &[(&'static str, Unknown<'_>)],
) -> Result<Prepared, Failure> {
    let actor = actor.map(|actor| actor_of(env, actor)).transpose()?;
    let mut input = Map::new();
    for (name, value) in args {
        // A left-out (or null) positional argument is not passed: the core
        // applies its default, or names it as missing.
        if !is_absent(value) {
            input.insert((*name).to_string(), to_json(env, *value, name)?);
        }
    }
    Ok((handle.core()?, actor, Value::Object(input)))
}

/// The core actor inside an `Actor` instance.
fn actor_of(env: &Env, value: Unknown<'_>) -> Result<clm::Actor, Failure> {
    let wrong = || {
        Failure::Type(
            "actor must be an Actor (from systemActor(), validateSession(), \
             authenticateApiKey() or actorForUser())"
                .into(),
        )
    };
    if !matches!(value.get_type(), Ok(ValueType::Object)) {
        return Err(wrong());
    }
    // The type tag proves the object wraps an Actor (not another class, not
    // a prototype lookalike) before the pointer is read; the actor is cloned
    // at once, on the JS thread that owns it.
    unsafe {
        validate_type_tag(
            env.raw(),
            value.raw(),
            &<Actor as TypeTag>::type_tag(),
            "Actor",
        )
        .map_err(|_| wrong())?;
        let mut wrapped: *mut std::ffi::c_void = std::ptr::null_mut();
        let status = sys::napi_unwrap(env.raw(), value.raw(), &mut wrapped);
        if status != sys::Status::napi_ok || wrapped.is_null() {
            return Err(wrong());
        }
        Ok((*wrapped.cast::<Actor>()).inner.clone())
    }
}

#[napi]
impl Clm {
    /// Opens clm: `{sqlite_dir}` or `{secure_url, core_url}`, plus
    /// `master_key` (base64 of 32 bytes) or `master_key_file` (created when
    /// missing with `create_master_key: true`), optionally `max_connections`
    /// and `cache_ttl_ms`.
    #[napi(ts_args_type = "options: OpenOptions", ts_return_type = "Promise<Clm>")]
    pub fn open<'env>(
        env: &'env Env,
        options: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Clm>> {
        let options = to_json(env, options, "options");
        env.spawn_future_with_callback(
            async move {
                let opened = async {
                    let config = clm::api::OpenOptions::parse(options?)?.into_config()?;
                    Ok::<_, Failure>(clm::Clm::open(config).await?)
                };
                Ok(opened.await)
            },
            |env, opened| match opened {
                Ok(clm) => Ok(Clm {
                    inner: Mutex::new(Some(clm)),
                }),
                Err(failure) => Err(failure.into_js(env)),
            },
        )
    }

    /// Closes both databases; later calls reject with code `CLOSED`. Idempotent.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let taken = self.inner.lock().ok().and_then(|mut inner| inner.take());
        env.spawn_future(async move {
            if let Some(clm) = taken {
                clm.close().await;
            }
            Ok(())
        })
    }

    /// The library version.
    #[napi]
    pub fn version() -> String {
        clm::api::version().to_string()
    }

    /// The host application's own actor: every permission. Throws with code
    /// `CLOSED` after `close()`.
    #[napi]
    pub fn system_actor(&self, env: &Env) -> napi::Result<Actor> {
        let clm = self.core().map_err(|err| js_error(env, err))?;
        Ok(Actor {
            inner: clm.system_actor(),
        })
    }

    /// Rotates the data key, re-sealing every private key in batches;
    /// resumes an interrupted run. `onProgress` (optional) receives
    /// `{rotation_id, total, rotated}` after each committed batch, on the JS
    /// thread, without holding the rotation up; what it throws is ignored.
    #[napi(
        ts_args_type = "actor: Actor, batchSize?: number | null, maxBatches?: number | null, onProgress?: ((progress: RotationProgress) => void) | null",
        ts_return_type = "Promise<RotationReport>"
    )]
    pub fn rotate_data_key<'env>(
        &self,
        env: &'env Env,
        actor: Unknown<'env>,
        batch_size: Unknown<'env>,
        max_batches: Unknown<'env>,
        on_progress: Unknown<'env>,
    ) -> napi::Result<PromiseRaw<'env, Output>> {
        let progress = match progress_callback(on_progress) {
            Ok(progress) => progress,
            Err(failure) => return rejected(env, failure),
        };
        self.run(
            env,
            "rotate_data_key",
            Some(actor),
            &[("batch_size", batch_size), ("max_batches", max_batches)],
            progress,
        )
    }
}

/// A Promise rejected with `failure`.
fn rejected<'env>(env: &'env Env, failure: Failure) -> napi::Result<PromiseRaw<'env, Output>> {
    env.spawn_future_with_callback(async move { Ok(failure) }, |env, failure| {
        Err::<Output, _>(failure.into_js(env))
    })
}

fn progress_callback(value: Unknown<'_>) -> Result<Option<ProgressCallback>, Failure> {
    if is_absent(&value) {
        return Ok(None);
    }
    if !matches!(value.get_type(), Ok(ValueType::Function)) {
        return Err(Failure::Type("onProgress must be a function".into()));
    }
    let build = || -> napi::Result<ProgressCallback> {
        let function: Function<'_, Value, Unknown<'static>> = unsafe { value.cast()? };
        function
            .build_threadsafe_function::<Value>()
            .callee_handled::<false>()
            .build()
    };
    build()
        .map(Some)
        .map_err(|err| Failure::Type(format!("onProgress cannot be called: {}", err.reason)))
}

/// One `#[napi]` method per entry, named as the operation; its parameters
/// are the operation's in table order, after `actor` when it needs one (the
/// first parameter is the actor exactly when it is named `actor`). Each
/// entry carries the TypeScript parameter list and return type.
macro_rules! operations {
    ($(
        $(#[doc = $doc:tt])*
        $name:ident ( $($arg:ident),* ) $ts_args:tt $ts_return:tt;
    )*) => {
        #[napi]
        impl Clm {
            $(
                $(#[doc = $doc])*
                #[napi(ts_args_type = $ts_args, ts_return_type = $ts_return)]
                #[allow(clippy::too_many_arguments)]
                pub fn $name<'env>(
                    &self,
                    env: &'env Env,
                    $($arg: Unknown<'env>),*
                ) -> napi::Result<PromiseRaw<'env, Output>> {
                    self.run_listed(env, stringify!($name), &[$((stringify!($arg), $arg)),*])
                }
            )*
        }
    };
}

impl Clm {
    /// A listed operation: `args` as the entry names them.
    fn run_listed<'env>(
        &self,
        env: &'env Env,
        name: &'static str,
        args: &[(&'static str, Unknown<'env>)],
    ) -> napi::Result<PromiseRaw<'env, Output>> {
        match args.split_first() {
            Some((("actor", actor), rest)) => self.run(env, name, Some(*actor), rest, None),
            _ => self.run(env, name, None, args, None),
        }
    }
}

operations! {
    #[doc = " Creates a user (with a password, or none for SSO-only users)."]
    create_user(actor, new)
        "actor: Actor, input: UserInput"
        "Promise<User>";
    #[doc = " One user by id."]
    get_user(actor, id)
        "actor: Actor, id: UserId"
        "Promise<User>";
    #[doc = " One user by username."]
    get_user_by_username(actor, username)
        "actor: Actor, username: string"
        "Promise<User>";
    #[doc = " Users, filtered and paginated."]
    list_users(actor, filter, page)
        "actor: Actor, filter?: UserFilterInput | null, page?: PageRequest | null"
        "Promise<Page<User>>";
    #[doc = " Changes a user's email, display name or status."]
    update_user(actor, id, update)
        "actor: Actor, id: UserId, update: UserUpdateInput"
        "Promise<User>";
    #[doc = " Soft-deletes a user and ends their sessions."]
    delete_user(actor, id)
        "actor: Actor, id: UserId"
        "Promise<void>";
    #[doc = " Restores a soft-deleted user."]
    restore_user(actor, id)
        "actor: Actor, id: UserId"
        "Promise<User>";
    #[doc = " Resets another user's password (containment over them; ends their sessions)."]
    set_password(actor, id, new_password)
        "actor: Actor, id: UserId, newPassword: string"
        "Promise<void>";
    #[doc = " Changes the acting user's own password: in person, with the current"]
    #[doc = " password (and a one-time code when MFA is on); ends the other sessions."]
    change_password(actor, current_password, new_password, otp)
        "actor: Actor, currentPassword: string, newPassword: string, otp?: string | null"
        "Promise<void>";
    #[doc = " Lifts a lockout."]
    unlock_user(actor, id)
        "actor: Actor, id: UserId"
        "Promise<User>";
    #[doc = " Starts TOTP enrollment for the acting user (in person, with the"]
    #[doc = " current password): the secret is shown once."]
    begin_mfa_enrollment(actor, current_password)
        "actor: Actor, currentPassword: string"
        "Promise<MfaEnrollment>";
    #[doc = " Confirms TOTP enrollment with a current code."]
    confirm_mfa_enrollment(actor, code)
        "actor: Actor, code: string"
        "Promise<void>";
    #[doc = " Turns MFA off: one's own with the current password and a one-time"]
    #[doc = " code; another user's with containment over them."]
    disable_mfa(actor, id, current_password, otp)
        "actor: Actor, id: UserId, currentPassword?: string | null, otp?: string | null"
        "Promise<void>";
    #[doc = " Logs in by username or email: the session token is shown this once."]
    authenticate(login, password, otp, ip_address, user_agent)
        "login: string, password: string, otp?: string | null, ipAddress?: string | null, userAgent?: string | null"
        "Promise<LoginResult>";
    #[doc = " The actor behind a session token (absolute and idle timeouts apply)."]
    validate_session(token)
        "token: string"
        "Promise<Actor>";
    #[doc = " An actor for a user, for host processes acting on a user's behalf."]
    actor_for_user(user_id)
        "userId: UserId"
        "Promise<Actor>";
    #[doc = " Ends the session of a token."]
    logout(token)
        "token: string"
        "Promise<void>";
    #[doc = " Revokes one session."]
    revoke_session(actor, id)
        "actor: Actor, id: SessionId"
        "Promise<void>";
    #[doc = " Revokes every session of a user; returns how many."]
    revoke_user_sessions(actor, user_id)
        "actor: Actor, userId: UserId"
        "Promise<number>";
    #[doc = " Deletes expired sessions; returns how many."]
    purge_expired_sessions(actor)
        "actor: Actor"
        "Promise<number>";
    #[doc = " Creates an API key: the key is shown this once."]
    create_api_key(actor, new)
        "actor: Actor, input: ApiKeyInput"
        "Promise<CreatedApiKey>";
    #[doc = " The actor behind an API key."]
    authenticate_api_key(key)
        "key: string"
        "Promise<Actor>";
    #[doc = " Revokes an API key."]
    revoke_api_key(actor, id)
        "actor: Actor, id: ApiKeyId"
        "Promise<void>";
    #[doc = " API keys (never their secrets), paginated."]
    list_api_keys(actor, page)
        "actor: Actor, page?: PageRequest | null"
        "Promise<Page<ApiKey>>";
    #[doc = " Creates a custom role (never wider than the creator's permissions)."]
    create_role(actor, new)
        "actor: Actor, input: RoleInput"
        "Promise<Role>";
    #[doc = " One role by id."]
    get_role(actor, id)
        "actor: Actor, id: RoleId"
        "Promise<Role>";
    #[doc = " One role by code."]
    get_role_by_code(actor, code)
        "actor: Actor, code: string"
        "Promise<Role>";
    #[doc = " Roles, paginated."]
    list_roles(actor, page)
        "actor: Actor, page?: PageRequest | null"
        "Promise<Page<Role>>";
    #[doc = " Replaces a custom role's permissions."]
    update_role_permissions(actor, id, permissions)
        "actor: Actor, id: RoleId, permissions: Permissions | string"
        "Promise<Role>";
    #[doc = " Soft-deletes a custom role."]
    delete_role(actor, id)
        "actor: Actor, id: RoleId"
        "Promise<void>";
    #[doc = " Grants a role to a user."]
    assign_role(actor, user_id, role_id)
        "actor: Actor, userId: UserId, roleId: RoleId"
        "Promise<UserRole>";
    #[doc = " Revokes a role from a user."]
    revoke_role(actor, user_id, role_id)
        "actor: Actor, userId: UserId, roleId: RoleId"
        "Promise<void>";
    #[doc = " Creates an organization."]
    create_organization(actor, new)
        "actor: Actor, input: OrganizationInput"
        "Promise<Organization>";
    #[doc = " One organization by id."]
    get_organization(actor, id)
        "actor: Actor, id: OrganizationId"
        "Promise<Organization>";
    #[doc = " Organizations, paginated."]
    list_organizations(actor, page)
        "actor: Actor, page?: PageRequest | null"
        "Promise<Page<Organization>>";
    #[doc = " Activates, suspends or archives an organization."]
    set_organization_status(actor, id, status)
        "actor: Actor, id: OrganizationId, status: OrganizationStatus"
        "Promise<Organization>";
    #[doc = " Adds a user to an organization with a membership role."]
    add_organization_member(actor, organization_id, user_id, membership_role)
        "actor: Actor, organizationId: OrganizationId, userId: UserId, membershipRole: string"
        "Promise<void>";
    #[doc = " Removes a user from an organization."]
    remove_organization_member(actor, organization_id, user_id)
        "actor: Actor, organizationId: OrganizationId, userId: UserId"
        "Promise<void>";
    #[doc = " Creates a certificate policy."]
    create_policy(actor, new)
        "actor: Actor, input: PolicyInput"
        "Promise<Policy>";
    #[doc = " One policy by id."]
    get_policy(actor, id)
        "actor: Actor, id: PolicyId"
        "Promise<Policy>";
    #[doc = " One policy by code."]
    get_policy_by_code(actor, code)
        "actor: Actor, code: string"
        "Promise<Policy>";
    #[doc = " Policies, filtered and paginated."]
    list_policies(actor, filter, page)
        "actor: Actor, filter?: PolicyFilterInput | null, page?: PageRequest | null"
        "Promise<Page<Policy>>";
    #[doc = " Changes a policy (a rules change bumps its version)."]
    update_policy(actor, id, update)
        "actor: Actor, id: PolicyId, update: PolicyUpdateInput"
        "Promise<Policy>";
    #[doc = " Soft-deletes a policy."]
    delete_policy(actor, id)
        "actor: Actor, id: PolicyId"
        "Promise<void>";
    #[doc = " Restores a soft-deleted policy."]
    restore_policy(actor, id)
        "actor: Actor, id: PolicyId"
        "Promise<Policy>";
    #[doc = " Creates a self-signed root CA."]
    create_root_ca(actor, new)
        "actor: Actor, input: AuthorityInput"
        "Promise<CertificateAuthority>";
    #[doc = " Creates an intermediate CA signed by a CA in clm."]
    create_intermediate_ca(actor, issuer_id, new)
        "actor: Actor, issuerId: CertificateId, input: AuthorityInput"
        "Promise<CertificateAuthority>";
    #[doc = " Every CA the actor can see."]
    list_authorities(actor)
        "actor: Actor"
        "Promise<CertificateAuthority[]>";
    #[doc = " Issues a certificate under policy (or queues it for approval)."]
    issue_certificate(actor, request)
        "actor: Actor, request: IssueInput"
        "Promise<IssuanceOutcome>";
    #[doc = " What issue_certificate would issue, and which rules pass or fail."]
    dry_run_issuance(actor, request)
        "actor: Actor, request: IssueInput"
        "Promise<DryRunReport>";
    #[doc = " Renews a certificate (new key unless reuse_key)."]
    renew_certificate(actor, certificate_id, options)
        "actor: Actor, certificateId: CertificateId, options?: RenewInput | null"
        "Promise<IssuanceOutcome>";
    #[doc = " A certificate's private key as PKCS#8 PEM (audited; needs its own permission)."]
    export_private_key(actor, certificate_id)
        "actor: Actor, certificateId: CertificateId"
        "Promise<string>";
    #[doc = " Generates a key and a PKCS#10 CSR for it, outside any database."]
    create_csr(subject, sans, key_algorithm)
        "subject?: DistinguishedName | null, sans?: SubjectAlternativeName[] | null, keyAlgorithm?: KeyAlgorithm | null"
        "Promise<CsrBundle>";
    #[doc = " Imports PEM, DER or bundles, optionally with the one certificate's key."]
    import_certificates(actor, request)
        "actor: Actor, request: ImportInput"
        "Promise<ImportReport>";
    #[doc = " One certificate by id."]
    get_certificate(actor, id)
        "actor: Actor, id: CertificateId"
        "Promise<Certificate>";
    #[doc = " One certificate by its business id (the SHA-256 fingerprint)."]
    get_certificate_by_certificate_id(actor, certificate_id)
        "actor: Actor, certificateId: string"
        "Promise<Certificate>";
    #[doc = " A certificate as PEM."]
    get_certificate_pem(actor, id)
        "actor: Actor, id: CertificateId"
        "Promise<string>";
    #[doc = " Searches the inventory, paginated."]
    search_certificates(actor, search, page)
        "actor: Actor, search?: SearchInput | null, page?: PageRequest | null"
        "Promise<Page<Certificate>>";
    #[doc = " A certificate and its issuers up to the root."]
    certificate_chain(actor, id)
        "actor: Actor, id: CertificateId"
        "Promise<Certificate[]>";
    #[doc = " Soft-deletes a certificate from the inventory."]
    delete_certificate(actor, id)
        "actor: Actor, id: CertificateId"
        "Promise<void>";
    #[doc = " Restores a soft-deleted certificate."]
    restore_certificate(actor, id)
        "actor: Actor, id: CertificateId"
        "Promise<Certificate>";
    #[doc = " Moves statuses forward as of `at` (default now); reports counts."]
    refresh_certificate_statuses(actor, at)
        "actor: Actor, at?: TimestampInput | null"
        "Promise<StatusRefreshReport>";
    #[doc = " Repairs rows a crash left half-written between the two databases."]
    reconcile(actor)
        "actor: Actor"
        "Promise<ReconcileReport>";
    #[doc = " Revokes a certificate (certificate_hold suspends it)."]
    revoke_certificate(actor, id, reason, comment)
        "actor: Actor, id: CertificateId, reason: RevocationReason, comment?: string | null"
        "Promise<CertificateRevocation>";
    #[doc = " Releases a certificate_hold."]
    release_certificate_hold(actor, id)
        "actor: Actor, id: CertificateId"
        "Promise<Certificate>";
    #[doc = " Generates the next CRL of an issuer."]
    generate_crl(actor, issuer_id, next_update_hours)
        "actor: Actor, issuerId: CertificateId, nextUpdateHours?: number | null"
        "Promise<GeneratedCrl>";
    #[doc = " Re-wraps every data key under a new master key."]
    rotate_master_key(actor, new_master_key)
        "actor: Actor, newMasterKey: MasterKeyInput"
        "Promise<RotationReport>";
    #[doc = " The data keys and what is still sealed under each."]
    key_status(actor)
        "actor: Actor"
        "Promise<DataKeyStatus[]>";
    #[doc = " Rotation history, paginated."]
    list_key_rotations(actor, page)
        "actor: Actor, page?: PageRequest | null"
        "Promise<Page<KeyRotation>>";
    #[doc = " Creates an approval workflow."]
    create_workflow(actor, new)
        "actor: Actor, input: WorkflowInput"
        "Promise<Workflow>";
    #[doc = " One workflow by id."]
    get_workflow(actor, id)
        "actor: Actor, id: WorkflowId"
        "Promise<Workflow>";
    #[doc = " One workflow by code."]
    get_workflow_by_code(actor, code)
        "actor: Actor, code: string"
        "Promise<Workflow>";
    #[doc = " Workflows, paginated."]
    list_workflows(actor, page)
        "actor: Actor, page?: PageRequest | null"
        "Promise<Page<Workflow>>";
    #[doc = " Approves or rejects the current step of a workflow instance."]
    decide_approval(actor, instance_id, approve, comment)
        "actor: Actor, instanceId: WorkflowInstanceId, approve: boolean, comment?: string | null"
        "Promise<WorkflowInstanceView>";
    #[doc = " Retries a failed workflow instance."]
    retry_workflow(actor, instance_id)
        "actor: Actor, instanceId: WorkflowInstanceId"
        "Promise<WorkflowInstanceView>";
    #[doc = " Cancels a workflow instance."]
    cancel_workflow(actor, instance_id)
        "actor: Actor, instanceId: WorkflowInstanceId"
        "Promise<WorkflowInstanceView>";
    #[doc = " Expires instances past their deadline as of `at` (default now); returns how many."]
    expire_stale_workflows(actor, at)
        "actor: Actor, at?: TimestampInput | null"
        "Promise<number>";
    #[doc = " The approvals waiting for the acting user."]
    pending_approvals(actor)
        "actor: Actor"
        "Promise<PendingApproval[]>";
    #[doc = " One workflow instance with its steps."]
    get_workflow_instance(actor, id)
        "actor: Actor, id: WorkflowInstanceId"
        "Promise<WorkflowInstanceView>";
    #[doc = " The acting user's notifications, paginated."]
    list_notifications(actor, unread_only, page)
        "actor: Actor, unreadOnly?: boolean | null, page?: PageRequest | null"
        "Promise<Page<Notification>>";
    #[doc = " Another user's notifications (needs `notifications:read`), paginated."]
    list_user_notifications(actor, user_id, unread_only, page)
        "actor: Actor, userId: UserId, unreadOnly?: boolean | null, page?: PageRequest | null"
        "Promise<Page<Notification>>";
    #[doc = " Marks one notification read."]
    mark_notification_read(actor, id)
        "actor: Actor, id: NotificationId"
        "Promise<void>";
    #[doc = " Marks all the acting user's notifications read; returns how many."]
    mark_all_notifications_read(actor)
        "actor: Actor"
        "Promise<number>";
    #[doc = " The delivery outbox: notifications not yet delivered, oldest first."]
    fetch_undelivered_notifications(actor, limit)
        "actor: Actor, limit: number"
        "Promise<Notification[]>";
    #[doc = " Marks notifications delivered; returns how many."]
    mark_notifications_delivered(actor, ids)
        "actor: Actor, ids: NotificationId[]"
        "Promise<number>";
    #[doc = " One lifecycle pass as of `at` (default now): statuses, notices, auto-renewals, expiry."]
    run_lifecycle(actor, at)
        "actor: Actor, at?: TimestampInput | null"
        "Promise<LifecycleReport>";
    #[doc = " Audit events of one trail (`secure` or `core`), filtered and paginated."]
    list_audit_events(actor, log, filter, page)
        "actor: Actor, log: AuditLogName, filter?: AuditFilterInput | null, page?: PageRequest | null"
        "Promise<Page<AuditEvent>>";
    #[doc = " Verifies a trail's hash chain; reports the first broken link."]
    verify_audit_chain(actor, log)
        "actor: Actor, log: AuditLogName"
        "Promise<ChainReport>";
    #[doc = " A signed checkpoint of a trail's head, for the host to keep elsewhere."]
    audit_checkpoint(actor, log)
        "actor: Actor, log: AuditLogName"
        "Promise<AuditCheckpoint>";
    #[doc = " Verifies a trail and that it still holds the head a checkpoint signed."]
    verify_audit_chain_against_checkpoint(actor, log, checkpoint)
        "actor: Actor, log: AuditLogName, checkpoint: AuditCheckpoint"
        "Promise<ChainReport>";
    #[doc = " Moves events older than `older_than_days` to a JSON-lines file."]
    archive_audit_events(actor, log, older_than_days, file)
        "actor: Actor, log: AuditLogName, olderThanDays: number, file: string"
        "Promise<ArchiveReport>";
}
