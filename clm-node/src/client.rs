//! `Clm` and `Actor`: the operations of `bindings/operations.txt`, in that
//! order (camelCase in JS). Object arguments use the wire shapes documented
//! in `bindings/wire.rs` (snake_case fields, as the records).

use std::sync::Mutex;

use napi::Env;
use napi::bindgen_prelude::PromiseRaw;
use napi_derive::napi;
use serde_json::Value;

use crate::errors::{promise, throw};
use crate::wire;

/// Who performs an operation: from `clm.systemActor()` or
/// `clm.validateSession()`. Opaque.
#[napi]
pub struct Actor {
    inner: clm::Actor,
}

#[napi]
impl Actor {
    /// `{kind: "user" | "api_key" | "system", user_id, session_id, organization_ids}`.
    #[napi]
    pub fn describe(&self) -> Value {
        wire::actor(&self.inner)
    }
}

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
}

#[napi]
impl Clm {
    /// Opens clm: `{sqlite_dir}` or `{secure_url, core_url}`, plus
    /// `master_key` (base64 of 32 bytes) or `master_key_file` (created when
    /// missing with `create_master_key: true`), optionally `max_connections`.
    #[napi(ts_return_type = "Promise<Clm>")]
    pub fn open<'env>(env: &'env Env, options: Value) -> napi::Result<PromiseRaw<'env, Clm>> {
        promise(env, async move {
            let options: wire::OpenOptions = wire::input("options", options)?;
            let clm = clm::Clm::open(options.into_config()?).await?;
            Ok(Clm {
                inner: Mutex::new(Some(clm)),
            })
        })
    }

    /// Closes both databases; later calls reject with code `CLOSED`. Idempotent.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let taken = self.inner.lock().ok().and_then(|mut inner| inner.take());
        promise(env, async move {
            if let Some(clm) = taken {
                clm.close().await;
            }
            Ok(())
        })
    }

    /// The library version.
    #[napi]
    pub fn version() -> String {
        wire::version().to_string()
    }

    /// The host application's own actor: every permission.
    #[napi]
    pub fn system_actor(&self, env: &Env) -> napi::Result<Actor> {
        let clm = self.core().map_err(|err| throw(env, err))?;
        Ok(Actor {
            inner: clm.system_actor(),
        })
    }

    /// Creates a user: `{username, email, display_name?, password?, organization_id?}`.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn create_user<'env>(
        &self,
        env: &'env Env,
        actor: &Actor,
        user: Value,
    ) -> napi::Result<PromiseRaw<'env, Value>> {
        let (core, actor) = (self.core(), actor.inner.clone());
        promise(env, async move {
            let input: wire::UserInput = wire::input("user", user)?;
            let user = core?.create_user(&actor, input.into()).await?;
            wire::record(&user)
        })
    }

    /// Logs in; resolves to `{token, session, user}` (the token is shown this once).
    #[napi(ts_return_type = "Promise<any>")]
    pub fn authenticate<'env>(
        &self,
        env: &'env Env,
        login: String,
        password: String,
        otp: Option<String>,
    ) -> napi::Result<PromiseRaw<'env, Value>> {
        let core = self.core();
        promise(env, async move {
            let outcome = core?
                .authenticate(
                    &login,
                    password.into(),
                    otp.as_deref(),
                    wire::login_context(),
                )
                .await?;
            wire::login(&outcome)
        })
    }

    /// The actor behind a session token.
    #[napi(ts_return_type = "Promise<Actor>")]
    pub fn validate_session<'env>(
        &self,
        env: &'env Env,
        token: String,
    ) -> napi::Result<PromiseRaw<'env, Actor>> {
        let core = self.core();
        promise(env, async move {
            let actor = core?.validate_session(&token).await?;
            Ok(Actor { inner: actor })
        })
    }

    /// Creates an organization: `{org_code, name, description?, parent_organization_id?}`.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn create_organization<'env>(
        &self,
        env: &'env Env,
        actor: &Actor,
        organization: Value,
    ) -> napi::Result<PromiseRaw<'env, Value>> {
        let (core, actor) = (self.core(), actor.inner.clone());
        promise(env, async move {
            let input: wire::OrganizationInput = wire::input("organization", organization)?;
            let org = core?.create_organization(&actor, input.into()).await?;
            wire::record(&org)
        })
    }

    /// Creates a policy: `{policy_code, name, rules, description?, status?,
    /// organization_id?, workflow_id?}` (`rules`: an object or JSON text).
    #[napi(ts_return_type = "Promise<any>")]
    pub fn create_policy<'env>(
        &self,
        env: &'env Env,
        actor: &Actor,
        policy: Value,
    ) -> napi::Result<PromiseRaw<'env, Value>> {
        let (core, actor) = (self.core(), actor.inner.clone());
        promise(env, async move {
            let input: wire::PolicyInput = wire::input("policy", policy)?;
            let policy = core?.create_policy(&actor, input.try_into()?).await?;
            wire::record(&policy)
        })
    }

    /// Creates a self-signed root CA: `{subject: {common_name, ...},
    /// key_algorithm?, validity_days?, path_len?, organization_id?,
    /// crl_distribution_points?, ocsp_urls?, ca_issuers_urls?}`; resolves to
    /// `{certificate, issuance_urls}`.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn create_root_ca<'env>(
        &self,
        env: &'env Env,
        actor: &Actor,
        ca: Value,
    ) -> napi::Result<PromiseRaw<'env, Value>> {
        let (core, actor) = (self.core(), actor.inner.clone());
        promise(env, async move {
            let input: wire::AuthorityInput = wire::input("ca", ca)?;
            let ca = core?.create_root_ca(&actor, input.try_into()?).await?;
            wire::record(&ca)
        })
    }

    /// Creates an intermediate CA signed by the CA `issuerId`; `ca` as for
    /// `createRootCa`.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn create_intermediate_ca<'env>(
        &self,
        env: &'env Env,
        actor: &Actor,
        issuer_id: String,
        ca: Value,
    ) -> napi::Result<PromiseRaw<'env, Value>> {
        let (core, actor) = (self.core(), actor.inner.clone());
        promise(env, async move {
            let issuer_id = wire::certificate_id(&issuer_id)?;
            let input: wire::AuthorityInput = wire::input("ca", ca)?;
            let ca = core?
                .create_intermediate_ca(&actor, issuer_id, input.try_into()?)
                .await?;
            wire::record(&ca)
        })
    }

    /// Issues a certificate: `{issuer_id, validity_days, subject?, sans?
    /// ([{type: "DNS" | "IP" | "EMAIL" | "URI", value}]), kind?,
    /// key_algorithm? or csr?, policy_id?, owner_user_id?, organization_id?}`;
    /// resolves to the certificate record. A request the policy sends for
    /// approval rejects with code `CONFLICT` naming the request.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn issue_certificate<'env>(
        &self,
        env: &'env Env,
        actor: &Actor,
        request: Value,
    ) -> napi::Result<PromiseRaw<'env, Value>> {
        let (core, actor) = (self.core(), actor.inner.clone());
        promise(env, async move {
            let input: wire::IssueInput = wire::input("request", request)?;
            let certificate = core?
                .issue_certificate(&actor, input.try_into()?)
                .await?
                .into_certificate()?;
            wire::record(&certificate)
        })
    }

    /// The certificate's private key as PKCS#8 PEM (the export is audited).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn export_private_key<'env>(
        &self,
        env: &'env Env,
        actor: &Actor,
        certificate_id: String,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let (core, actor) = (self.core(), actor.inner.clone());
        promise(env, async move {
            let id = wire::certificate_id(&certificate_id)?;
            let pem = core?.export_private_key(&actor, id).await?;
            Ok(pem.expose().to_string())
        })
    }

    /// Revokes a certificate for an RFC 5280 reason (`"key_compromise"`, ...).
    #[napi(ts_return_type = "Promise<any>")]
    pub fn revoke_certificate<'env>(
        &self,
        env: &'env Env,
        actor: &Actor,
        certificate_id: String,
        reason: String,
        comment: Option<String>,
    ) -> napi::Result<PromiseRaw<'env, Value>> {
        let (core, actor) = (self.core(), actor.inner.clone());
        promise(env, async move {
            let id = wire::certificate_id(&certificate_id)?;
            let reason = wire::revocation_reason(&reason)?;
            let revocation = core?
                .revoke_certificate(&actor, id, reason, comment)
                .await?;
            wire::record(&revocation)
        })
    }

    /// Signs a CRL for the CA `issuerId`; resolves to `{issuer_certificate_id,
    /// crl_number, pem, this_update, next_update, entries}`.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn generate_crl<'env>(
        &self,
        env: &'env Env,
        actor: &Actor,
        issuer_id: String,
        next_update_hours: Option<u32>,
    ) -> napi::Result<PromiseRaw<'env, Value>> {
        let (core, actor) = (self.core(), actor.inner.clone());
        promise(env, async move {
            let id = wire::certificate_id(&issuer_id)?;
            let crl = core?.generate_crl(&actor, id, next_update_hours).await?;
            wire::record(&crl)
        })
    }

    /// Recomputes an audit chain (`log`: `"secure"` or `"core"`).
    #[napi(ts_return_type = "Promise<any>")]
    pub fn verify_audit_chain<'env>(
        &self,
        env: &'env Env,
        actor: &Actor,
        log: String,
    ) -> napi::Result<PromiseRaw<'env, Value>> {
        let (core, actor) = (self.core(), actor.inner.clone());
        promise(env, async move {
            let kind = wire::audit_log(&log)?;
            let report = core?.verify_audit_chain(&actor, kind).await?;
            wire::record(&report)
        })
    }
}
