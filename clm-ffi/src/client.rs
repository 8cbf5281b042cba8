//! The operations of `bindings/operations.txt`, in that order, as C
//! functions `clm_<operation>`. Each converts its arguments (through the
//! shared wire module), blocks on the handle's runtime, and writes its
//! result to the out-pointer.

use std::ffi::c_char;
use std::sync::Mutex;

use clm::{Clm, Error, Result};
use serde_json::Value;

use crate::boundary::{
    borrow, check_out, free_box, guard, optional_text, text, write_box, write_string,
};
use crate::{clm_status, wire};

/// An open clm: both databases, a master key, and the runtime its calls
/// block on. Opaque; from `clm_open`, freed by `clm_handle_free`.
pub struct clm_handle {
    runtime: tokio::runtime::Runtime,
    inner: Mutex<Option<Clm>>,
}

/// Who performs an operation (from `clm_system_actor` or
/// `clm_validate_session`). Opaque; freed by `clm_actor_free`.
pub struct clm_actor {
    inner: clm::Actor,
}

impl clm_handle {
    /// The open core, or Closed after `clm_close`.
    fn clm(&self) -> Result<Clm> {
        self.inner
            .lock()
            .map_err(|_| Error::Internal("the handle's lock is poisoned".into()))?
            .clone()
            .ok_or(Error::Closed)
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    fn close(&self) -> Result<()> {
        let taken = self
            .inner
            .lock()
            .map_err(|_| Error::Internal("the handle's lock is poisoned".into()))?
            .take();
        if let Some(clm) = taken {
            self.block_on(clm.close());
        }
        Ok(())
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("clm-ffi")
        .enable_all()
        .build()
        .map_err(|err| Error::Internal(format!("cannot start a runtime: {err}")))
}

/// A JSON input argument, parsed.
unsafe fn json_arg(ptr: *const c_char, name: &str) -> Result<Value> {
    let text = unsafe { text(ptr, name) }?;
    wire::parse_json(name, text)
}

unsafe fn write_json(out: *mut *mut c_char, value: &Value) -> Result<()> {
    unsafe { write_string(out, &value.to_string()) }
}

/// Opens clm. `options_json`: `{"sqlite_dir": DIR}` or
/// `{"secure_url": URL, "core_url": URL}`, plus `"master_key"` (base64 of 32
/// bytes) or `"master_key_file"` (with `"create_master_key": true` it is
/// created when missing), optionally `"max_connections"`.
///
/// # Safety
/// `options_json` is NULL or a NUL-terminated string; `out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_open(
    options_json: *const c_char,
    out: *mut *mut clm_handle,
) -> clm_status {
    guard(|| {
        check_out(out, "out")?;
        let options: wire::OpenOptions = wire::input("options", unsafe {
            json_arg(options_json, "options_json")
        }?)?;
        let config = options.into_config()?;
        let runtime = runtime()?;
        let clm = runtime.block_on(Clm::open(config))?;
        let handle = clm_handle {
            runtime,
            inner: Mutex::new(Some(clm)),
        };
        unsafe { write_box(out, handle) };
        Ok(())
    })
}

/// Closes both databases. Later calls on the handle fail with CLM_CLOSED;
/// closing twice is allowed. The handle still needs `clm_handle_free`.
///
/// # Safety
/// `handle` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_close(handle: *const clm_handle) -> clm_status {
    guard(|| unsafe { borrow(handle, "handle") }?.close())
}

/// Closes (when still open) and frees a handle. NULL is allowed.
///
/// # Safety
/// `handle` is NULL or a live handle, freed once; no call on it may be
/// running.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_handle_free(handle: *mut clm_handle) {
    if handle.is_null() {
        return;
    }
    let _ = guard(|| {
        let _ = unsafe { borrow(handle.cast_const(), "handle") }?.close();
        Ok(())
    });
    // SAFETY: the caller hands the handle back once.
    let boxed = unsafe { Box::from_raw(handle) };
    let clm_handle { runtime, inner } = *boxed;
    drop(inner);
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
}

/// The host application's own actor: every permission.
///
/// # Safety
/// `handle` is NULL or a live handle; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_system_actor(
    handle: *const clm_handle,
    out: *mut *mut clm_actor,
) -> clm_status {
    guard(|| {
        check_out(out, "out")?;
        let clm = unsafe { borrow(handle, "handle") }?.clm()?;
        unsafe {
            write_box(
                out,
                clm_actor {
                    inner: clm.system_actor(),
                },
            )
        };
        Ok(())
    })
}

/// Describes an actor as JSON: `{"kind": "user"|"api_key"|"system",
/// "user_id", "session_id", "organization_ids"}`.
///
/// # Safety
/// `actor` is NULL or a live actor; `out_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_actor_json(
    actor: *const clm_actor,
    out_json: *mut *mut c_char,
) -> clm_status {
    guard(|| {
        check_out(out_json, "out_json")?;
        let actor = unsafe { borrow(actor, "actor") }?;
        unsafe { write_json(out_json, &wire::actor(&actor.inner)) }
    })
}

/// Frees an actor. NULL is allowed.
///
/// # Safety
/// `actor` is NULL or a live actor, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_actor_free(actor: *mut clm_actor) {
    unsafe { free_box(actor) }
}

/// Creates a user. `user_json`: `{"username", "email", "display_name"?,
/// "password"?, "organization_id"?}`. `out_json`: the user record.
///
/// # Safety
/// Pointers are NULL or valid: live handles, NUL-terminated strings,
/// writable out-pointers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_create_user(
    handle: *const clm_handle,
    actor: *const clm_actor,
    user_json: *const c_char,
    out_json: *mut *mut c_char,
) -> clm_status {
    guard(|| {
        check_out(out_json, "out_json")?;
        let handle = unsafe { borrow(handle, "handle") }?;
        let actor = unsafe { borrow(actor, "actor") }?;
        let input: wire::UserInput =
            wire::input("user", unsafe { json_arg(user_json, "user_json") }?)?;
        let clm = handle.clm()?;
        let user = handle.block_on(clm.create_user(&actor.inner, input.into()))?;
        unsafe { write_json(out_json, &wire::record(&user)?) }
    })
}

/// Logs in by username or email and password (`otp`: the TOTP code when
/// MFA is on, else NULL). `out_json`: `{"token", "session", "user"}`; the
/// token is shown this once.
///
/// # Safety
/// As `clm_create_user`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_authenticate(
    handle: *const clm_handle,
    login: *const c_char,
    password: *const c_char,
    otp: *const c_char,
    out_json: *mut *mut c_char,
) -> clm_status {
    guard(|| {
        check_out(out_json, "out_json")?;
        let handle = unsafe { borrow(handle, "handle") }?;
        let login = unsafe { text(login, "login") }?;
        let password = unsafe { text(password, "password") }?;
        let otp = unsafe { optional_text(otp, "otp") }?;
        let clm = handle.clm()?;
        let outcome = handle.block_on(clm.authenticate(
            login,
            password.into(),
            otp,
            wire::login_context(),
        ))?;
        unsafe { write_json(out_json, &wire::login(&outcome)?) }
    })
}

/// The actor behind a session token (from `clm_authenticate`).
///
/// # Safety
/// As `clm_create_user`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_validate_session(
    handle: *const clm_handle,
    token: *const c_char,
    out: *mut *mut clm_actor,
) -> clm_status {
    guard(|| {
        check_out(out, "out")?;
        let handle = unsafe { borrow(handle, "handle") }?;
        let token = unsafe { text(token, "token") }?;
        let clm = handle.clm()?;
        let actor = handle.block_on(clm.validate_session(token))?;
        unsafe { write_box(out, clm_actor { inner: actor }) };
        Ok(())
    })
}

/// Creates an organization. `organization_json`: `{"org_code", "name",
/// "description"?, "parent_organization_id"?}`. `out_json`: the record.
///
/// # Safety
/// As `clm_create_user`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_create_organization(
    handle: *const clm_handle,
    actor: *const clm_actor,
    organization_json: *const c_char,
    out_json: *mut *mut c_char,
) -> clm_status {
    guard(|| {
        check_out(out_json, "out_json")?;
        let handle = unsafe { borrow(handle, "handle") }?;
        let actor = unsafe { borrow(actor, "actor") }?;
        let input: wire::OrganizationInput = wire::input("organization", unsafe {
            json_arg(organization_json, "organization_json")
        }?)?;
        let clm = handle.clm()?;
        let org = handle.block_on(clm.create_organization(&actor.inner, input.into()))?;
        unsafe { write_json(out_json, &wire::record(&org)?) }
    })
}

/// Creates a policy. `policy_json`: `{"policy_code", "name", "rules",
/// "description"?, "status"?, "organization_id"?, "workflow_id"?}` where
/// `rules` is the rules document (an object). `out_json`: the record.
///
/// # Safety
/// As `clm_create_user`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_create_policy(
    handle: *const clm_handle,
    actor: *const clm_actor,
    policy_json: *const c_char,
    out_json: *mut *mut c_char,
) -> clm_status {
    guard(|| {
        check_out(out_json, "out_json")?;
        let handle = unsafe { borrow(handle, "handle") }?;
        let actor = unsafe { borrow(actor, "actor") }?;
        let input: wire::PolicyInput =
            wire::input("policy", unsafe { json_arg(policy_json, "policy_json") }?)?;
        let new = input.try_into()?;
        let clm = handle.clm()?;
        let policy = handle.block_on(clm.create_policy(&actor.inner, new))?;
        unsafe { write_json(out_json, &wire::record(&policy)?) }
    })
}

/// Creates a self-signed root CA. `ca_json`: `{"subject": {"common_name",
/// "organization"?, "country"?, ...}, "key_algorithm"?, "validity_days"?,
/// "path_len"?, "organization_id"?, "crl_distribution_points"?,
/// "ocsp_urls"?, "ca_issuers_urls"?}`. `out_json`: `{"certificate",
/// "issuance_urls"}`.
///
/// # Safety
/// As `clm_create_user`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_create_root_ca(
    handle: *const clm_handle,
    actor: *const clm_actor,
    ca_json: *const c_char,
    out_json: *mut *mut c_char,
) -> clm_status {
    guard(|| {
        check_out(out_json, "out_json")?;
        let handle = unsafe { borrow(handle, "handle") }?;
        let actor = unsafe { borrow(actor, "actor") }?;
        let input: wire::AuthorityInput =
            wire::input("ca", unsafe { json_arg(ca_json, "ca_json") }?)?;
        let new = input.try_into()?;
        let clm = handle.clm()?;
        let ca = handle.block_on(clm.create_root_ca(&actor.inner, new))?;
        unsafe { write_json(out_json, &wire::record(&ca)?) }
    })
}

/// Creates an intermediate CA signed by the CA `issuer_id` (a certificate
/// id). `ca_json` and `out_json` as for `clm_create_root_ca`.
///
/// # Safety
/// As `clm_create_user`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_create_intermediate_ca(
    handle: *const clm_handle,
    actor: *const clm_actor,
    issuer_id: *const c_char,
    ca_json: *const c_char,
    out_json: *mut *mut c_char,
) -> clm_status {
    guard(|| {
        check_out(out_json, "out_json")?;
        let handle = unsafe { borrow(handle, "handle") }?;
        let actor = unsafe { borrow(actor, "actor") }?;
        let issuer_id = wire::certificate_id(unsafe { text(issuer_id, "issuer_id") }?)?;
        let input: wire::AuthorityInput =
            wire::input("ca", unsafe { json_arg(ca_json, "ca_json") }?)?;
        let new = input.try_into()?;
        let clm = handle.clm()?;
        let ca = handle.block_on(clm.create_intermediate_ca(&actor.inner, issuer_id, new))?;
        unsafe { write_json(out_json, &wire::record(&ca)?) }
    })
}

/// Issues a certificate. `request_json`: `{"issuer_id", "validity_days",
/// "subject"?, "sans"? ([{"type": "DNS"|"IP"|"EMAIL"|"URI", "value"}]),
/// "kind"? ("tls_server"), "key_algorithm"? ("ecdsa_p256": clm generates
/// and keeps the key) or "csr"? (PEM), "policy_id"?, "owner_user_id"?,
/// "organization_id"?}`. `out_json`: the certificate record. A request the
/// policy sends for approval fails with CLM_CONFLICT naming the request.
///
/// # Safety
/// As `clm_create_user`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_issue_certificate(
    handle: *const clm_handle,
    actor: *const clm_actor,
    request_json: *const c_char,
    out_json: *mut *mut c_char,
) -> clm_status {
    guard(|| {
        check_out(out_json, "out_json")?;
        let handle = unsafe { borrow(handle, "handle") }?;
        let actor = unsafe { borrow(actor, "actor") }?;
        let input: wire::IssueInput = wire::input("request", unsafe {
            json_arg(request_json, "request_json")
        }?)?;
        let request = input.try_into()?;
        let clm = handle.clm()?;
        let certificate = handle
            .block_on(clm.issue_certificate(&actor.inner, request))?
            .into_certificate()?;
        unsafe { write_json(out_json, &wire::record(&certificate)?) }
    })
}

/// The private key of a certificate as PKCS#8 PEM (audited). `out_pem` is
/// secret: free it with `clm_string_free` as soon as it is used.
///
/// # Safety
/// As `clm_create_user`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_export_private_key(
    handle: *const clm_handle,
    actor: *const clm_actor,
    certificate_id: *const c_char,
    out_pem: *mut *mut c_char,
) -> clm_status {
    guard(|| {
        check_out(out_pem, "out_pem")?;
        let handle = unsafe { borrow(handle, "handle") }?;
        let actor = unsafe { borrow(actor, "actor") }?;
        let id = wire::certificate_id(unsafe { text(certificate_id, "certificate_id") }?)?;
        let clm = handle.clm()?;
        let pem = handle.block_on(clm.export_private_key(&actor.inner, id))?;
        unsafe { write_string(out_pem, pem.expose()) }
    })
}

/// Revokes a certificate. `reason`: an RFC 5280 reason in snake_case
/// (`"key_compromise"`, `"superseded"`, `"certificate_hold"`, ...);
/// `comment` may be NULL. `out_json`: the revocation record.
///
/// # Safety
/// As `clm_create_user`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_revoke_certificate(
    handle: *const clm_handle,
    actor: *const clm_actor,
    certificate_id: *const c_char,
    reason: *const c_char,
    comment: *const c_char,
    out_json: *mut *mut c_char,
) -> clm_status {
    guard(|| {
        check_out(out_json, "out_json")?;
        let handle = unsafe { borrow(handle, "handle") }?;
        let actor = unsafe { borrow(actor, "actor") }?;
        let id = wire::certificate_id(unsafe { text(certificate_id, "certificate_id") }?)?;
        let reason = wire::revocation_reason(unsafe { text(reason, "reason") }?)?;
        let comment = unsafe { optional_text(comment, "comment") }?.map(str::to_string);
        let clm = handle.clm()?;
        let revocation =
            handle.block_on(clm.revoke_certificate(&actor.inner, id, reason, comment))?;
        unsafe { write_json(out_json, &wire::record(&revocation)?) }
    })
}

/// Signs a CRL for the CA `issuer_id`; `next_update_hours` 0 means the
/// default (24). `out_json`: `{"issuer_certificate_id", "crl_number", "pem",
/// "this_update", "next_update", "entries"}`.
///
/// # Safety
/// As `clm_create_user`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_generate_crl(
    handle: *const clm_handle,
    actor: *const clm_actor,
    issuer_id: *const c_char,
    next_update_hours: u32,
    out_json: *mut *mut c_char,
) -> clm_status {
    guard(|| {
        check_out(out_json, "out_json")?;
        let handle = unsafe { borrow(handle, "handle") }?;
        let actor = unsafe { borrow(actor, "actor") }?;
        let id = wire::certificate_id(unsafe { text(issuer_id, "issuer_id") }?)?;
        let hours = (next_update_hours != 0).then_some(next_update_hours);
        let clm = handle.clm()?;
        let crl = handle.block_on(clm.generate_crl(&actor.inner, id, hours))?;
        unsafe { write_json(out_json, &wire::record(&crl)?) }
    })
}

/// Recomputes an audit chain. `log`: `"secure"` or `"core"`. `out_json`:
/// `{"log", "rows_checked", "first_sequence", "last_sequence", "broken"}`
/// (`broken` is null when the chain is intact).
///
/// # Safety
/// As `clm_create_user`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_verify_audit_chain(
    handle: *const clm_handle,
    actor: *const clm_actor,
    log: *const c_char,
    out_json: *mut *mut c_char,
) -> clm_status {
    guard(|| {
        check_out(out_json, "out_json")?;
        let handle = unsafe { borrow(handle, "handle") }?;
        let actor = unsafe { borrow(actor, "actor") }?;
        let kind = wire::audit_log(unsafe { text(log, "log") }?)?;
        let clm = handle.clm()?;
        let report = handle.block_on(clm.verify_audit_chain(&actor.inner, kind))?;
        unsafe { write_json(out_json, &wire::record(&report)?) }
    })
}
