//! `clm.Clm` and `clm.Actor`: the operations of `bindings/operations.txt`,
//! in that order. Each method extracts typed arguments (a wrong type is a
//! TypeError), builds the wire input, and blocks on the runtime with the GIL
//! released.

use std::future::Future;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyType};
use serde_json::{Value, json};

use crate::convert::{to_json, to_py};
use crate::errors::ClmErr;
use crate::wire;

/// One runtime for the process, rebuilt in a child after `fork()` (the
/// parent's worker threads do not exist there; its runtime is leaked).
static RUNTIME: Mutex<Option<(u32, Arc<tokio::runtime::Runtime>)>> = Mutex::new(None);

fn runtime() -> clm::Result<Arc<tokio::runtime::Runtime>> {
    let mut slot = RUNTIME
        .lock()
        .map_err(|_| clm::Error::Internal("the runtime lock is poisoned".into()))?;
    let pid = std::process::id();
    if let Some((owner, runtime)) = slot.as_ref()
        && *owner == pid
    {
        return Ok(runtime.clone());
    }
    if let Some((_, stale)) = slot.take() {
        std::mem::forget(stale);
    }
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("clm-py")
            .enable_all()
            .build()
            .map_err(|err| clm::Error::Internal(format!("cannot start a runtime: {err}")))?,
    );
    *slot = Some((pid, runtime.clone()));
    Ok(runtime)
}

fn raise(err: clm::Error) -> PyErr {
    ClmErr(err).into()
}

/// Runs a core future to completion with the GIL released.
fn block<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    T: Send,
    F: Future<Output = clm::Result<T>> + Send,
{
    py.detach(|| runtime()?.block_on(future)).map_err(raise)
}

fn input<T: serde::de::DeserializeOwned>(what: &str, value: Value) -> PyResult<T> {
    wire::input(what, value).map_err(raise)
}

fn record<'py, T: serde::Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    to_py(py, &wire::record(value).map_err(raise)?)
}

fn optional_json(what: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Value> {
    value.map_or(Ok(Value::Null), |v| to_json(what, v))
}

/// Who performs an operation: from `Clm.system_actor()` or
/// `Clm.validate_session()`. Opaque; its properties describe it.
#[pyclass(frozen, module = "clm")]
pub struct Actor {
    inner: clm::Actor,
}

#[pymethods]
impl Actor {
    /// `"user"`, `"api_key"` or `"system"`.
    #[getter]
    fn kind(&self) -> String {
        wire::actor(&self.inner)["kind"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The user's id (None for the system actor).
    #[getter]
    fn user_id(&self) -> Option<String> {
        self.inner.user_id().map(|id| id.to_string())
    }

    /// The session's id when the actor comes from a session.
    #[getter]
    fn session_id(&self) -> Option<String> {
        self.inner.session_id.map(|id| id.to_string())
    }

    /// The organizations the actor belongs to.
    #[getter]
    fn organization_ids(&self) -> Vec<String> {
        self.inner
            .organization_ids
            .iter()
            .map(|id| id.to_string())
            .collect()
    }

    fn __repr__(&self) -> String {
        format!("Actor({})", wire::actor(&self.inner))
    }
}

/// An open clm. `Clm.open(...)` opens it; `close()` (or leaving a `with`
/// block) closes it, after which every call raises `clm.Closed`.
#[pyclass(frozen, module = "clm")]
pub struct Clm {
    inner: Mutex<Option<clm::Clm>>,
}

impl Clm {
    fn core(&self) -> PyResult<clm::Clm> {
        self.inner
            .lock()
            .map_err(|_| raise(clm::Error::Internal("the handle's lock is poisoned".into())))?
            .clone()
            .ok_or_else(|| raise(clm::Error::Closed))
    }
}

#[pymethods]
impl Clm {
    /// Opens clm on a SQLite directory (`sqlite_dir`) or two PostgreSQL
    /// databases (`secure_url`, `core_url`) with a master key: `master_key`
    /// (base64 of 32 bytes) or `master_key_file` (created when missing with
    /// `create_master_key=True`).
    #[staticmethod]
    #[pyo3(signature = (*, sqlite_dir=None, secure_url=None, core_url=None, master_key=None,
        master_key_file=None, create_master_key=false, max_connections=None))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        sqlite_dir: Option<std::path::PathBuf>,
        secure_url: Option<String>,
        core_url: Option<String>,
        master_key: Option<String>,
        master_key_file: Option<std::path::PathBuf>,
        create_master_key: bool,
        max_connections: Option<u32>,
    ) -> PyResult<Clm> {
        let options: wire::OpenOptions = input(
            "options",
            json!({
                "sqlite_dir": sqlite_dir,
                "secure_url": secure_url,
                "core_url": core_url,
                "master_key": master_key,
                "master_key_file": master_key_file,
                "create_master_key": create_master_key,
                "max_connections": max_connections,
            }),
        )?;
        let config = options.into_config().map_err(raise)?;
        let clm = block(py, clm::Clm::open(config))?;
        Ok(Clm {
            inner: Mutex::new(Some(clm)),
        })
    }

    /// Closes both databases; later calls raise `clm.Closed`. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self
            .inner
            .lock()
            .map_err(|_| raise(clm::Error::Internal("the handle's lock is poisoned".into())))?
            .take();
        if let Some(clm) = taken {
            block(py, async move {
                clm.close().await;
                Ok(())
            })?;
        }
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyType>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    /// The library version.
    #[staticmethod]
    fn version() -> &'static str {
        wire::version()
    }

    /// The host application's own actor: every permission.
    fn system_actor(&self) -> PyResult<Actor> {
        Ok(Actor {
            inner: self.core()?.system_actor(),
        })
    }

    /// Creates a user; returns the user record.
    #[pyo3(signature = (actor, username, email, *, display_name=None, password=None,
        organization_id=None))]
    #[allow(clippy::too_many_arguments)]
    fn create_user<'py>(
        &self,
        py: Python<'py>,
        actor: &Actor,
        username: String,
        email: String,
        display_name: Option<String>,
        password: Option<String>,
        organization_id: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let new: wire::UserInput = input(
            "user",
            json!({
                "username": username,
                "email": email,
                "display_name": display_name,
                "password": password,
                "organization_id": organization_id,
            }),
        )?;
        let clm = self.core()?;
        let user = block(py, clm.create_user(&actor.inner, new.into()))?;
        record(py, &user)
    }

    /// Logs in by username or email + password (+ TOTP code when MFA is on).
    /// Returns `{"token", "session", "user"}`; the token is shown this once.
    #[pyo3(signature = (login, password, otp=None))]
    fn authenticate<'py>(
        &self,
        py: Python<'py>,
        login: String,
        password: String,
        otp: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let clm = self.core()?;
        let outcome = block(
            py,
            clm.authenticate(
                &login,
                password.into(),
                otp.as_deref(),
                wire::login_context(),
            ),
        )?;
        to_py(py, &wire::login(&outcome).map_err(raise)?)
    }

    /// The actor behind a session token.
    fn validate_session(&self, py: Python<'_>, token: String) -> PyResult<Actor> {
        let clm = self.core()?;
        let actor = block(py, clm.validate_session(&token))?;
        Ok(Actor { inner: actor })
    }

    /// Creates an organization (global administrators only).
    #[pyo3(signature = (actor, org_code, name, *, description=None, parent_organization_id=None))]
    fn create_organization<'py>(
        &self,
        py: Python<'py>,
        actor: &Actor,
        org_code: String,
        name: String,
        description: Option<String>,
        parent_organization_id: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let new: wire::OrganizationInput = input(
            "organization",
            json!({
                "org_code": org_code,
                "name": name,
                "description": description,
                "parent_organization_id": parent_organization_id,
            }),
        )?;
        let clm = self.core()?;
        let org = block(py, clm.create_organization(&actor.inner, new.into()))?;
        record(py, &org)
    }

    /// Creates a policy; `rules` is the rules document as a dict or JSON text.
    #[pyo3(signature = (actor, policy_code, name, rules, *, description=None, status=None,
        organization_id=None, workflow_id=None))]
    #[allow(clippy::too_many_arguments)]
    fn create_policy<'py>(
        &self,
        py: Python<'py>,
        actor: &Actor,
        policy_code: String,
        name: String,
        rules: &Bound<'py, PyAny>,
        description: Option<String>,
        status: Option<String>,
        organization_id: Option<String>,
        workflow_id: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if !(rules.is_instance_of::<PyDict>() || rules.is_instance_of::<PyString>()) {
            return Err(PyTypeError::new_err("rules must be a dict or JSON text"));
        }
        let new: wire::PolicyInput = input(
            "policy",
            json!({
                "policy_code": policy_code,
                "name": name,
                "rules": to_json("rules", rules)?,
                "description": description,
                "status": status,
                "organization_id": organization_id,
                "workflow_id": workflow_id,
            }),
        )?;
        let new = new.try_into().map_err(raise)?;
        let clm = self.core()?;
        let policy = block(py, clm.create_policy(&actor.inner, new))?;
        record(py, &policy)
    }

    /// Creates a self-signed root CA with a new key. `subject` is a dict of
    /// `common_name`, `organization`, `organizational_unit`, `country`,
    /// `state`, `locality`, `email`. Returns `{"certificate", "issuance_urls"}`.
    #[pyo3(signature = (actor, subject, *, key_algorithm=None, validity_days=None, path_len=None,
        organization_id=None, crl_distribution_points=None, ocsp_urls=None,
        ca_issuers_urls=None))]
    #[allow(clippy::too_many_arguments)]
    fn create_root_ca<'py>(
        &self,
        py: Python<'py>,
        actor: &Actor,
        subject: &Bound<'py, PyDict>,
        key_algorithm: Option<String>,
        validity_days: Option<u32>,
        path_len: Option<u8>,
        organization_id: Option<String>,
        crl_distribution_points: Option<Vec<String>>,
        ocsp_urls: Option<Vec<String>>,
        ca_issuers_urls: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let new: wire::AuthorityInput = input(
            "ca",
            json!({
                "subject": to_json("subject", subject)?,
                "key_algorithm": key_algorithm,
                "validity_days": validity_days,
                "path_len": path_len,
                "organization_id": organization_id,
                "crl_distribution_points": crl_distribution_points.unwrap_or_default(),
                "ocsp_urls": ocsp_urls.unwrap_or_default(),
                "ca_issuers_urls": ca_issuers_urls.unwrap_or_default(),
            }),
        )?;
        let new = new.try_into().map_err(raise)?;
        let clm = self.core()?;
        let ca = block(py, clm.create_root_ca(&actor.inner, new))?;
        record(py, &ca)
    }

    /// Creates an intermediate CA with a new key, signed by the CA
    /// `issuer_id`. Arguments and result as `create_root_ca`.
    #[pyo3(signature = (actor, issuer_id, subject, *, key_algorithm=None, validity_days=None,
        path_len=None, organization_id=None, crl_distribution_points=None, ocsp_urls=None,
        ca_issuers_urls=None))]
    #[allow(clippy::too_many_arguments)]
    fn create_intermediate_ca<'py>(
        &self,
        py: Python<'py>,
        actor: &Actor,
        issuer_id: String,
        subject: &Bound<'py, PyDict>,
        key_algorithm: Option<String>,
        validity_days: Option<u32>,
        path_len: Option<u8>,
        organization_id: Option<String>,
        crl_distribution_points: Option<Vec<String>>,
        ocsp_urls: Option<Vec<String>>,
        ca_issuers_urls: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let issuer_id = wire::certificate_id(&issuer_id).map_err(raise)?;
        let new: wire::AuthorityInput = input(
            "ca",
            json!({
                "subject": to_json("subject", subject)?,
                "key_algorithm": key_algorithm,
                "validity_days": validity_days,
                "path_len": path_len,
                "organization_id": organization_id,
                "crl_distribution_points": crl_distribution_points.unwrap_or_default(),
                "ocsp_urls": ocsp_urls.unwrap_or_default(),
                "ca_issuers_urls": ca_issuers_urls.unwrap_or_default(),
            }),
        )?;
        let new = new.try_into().map_err(raise)?;
        let clm = self.core()?;
        let ca = block(py, clm.create_intermediate_ca(&actor.inner, issuer_id, new))?;
        record(py, &ca)
    }

    /// Issues a certificate signed by the CA `issuer_id`. clm generates the
    /// key (`key_algorithm`, default `"ecdsa_p256"`) unless a PEM `csr` is
    /// given. `sans`: `[{"type": "DNS"|"IP"|"EMAIL"|"URI", "value": ...}]`.
    /// Returns the certificate record; a request the policy sends for
    /// approval raises `clm.Conflict` naming the request.
    #[pyo3(signature = (actor, issuer_id, validity_days, *, subject=None, sans=None, kind=None,
        key_algorithm=None, csr=None, policy_id=None, owner_user_id=None, organization_id=None))]
    #[allow(clippy::too_many_arguments)]
    fn issue_certificate<'py>(
        &self,
        py: Python<'py>,
        actor: &Actor,
        issuer_id: String,
        validity_days: u32,
        subject: Option<&Bound<'py, PyDict>>,
        sans: Option<&Bound<'py, pyo3::types::PyList>>,
        kind: Option<String>,
        key_algorithm: Option<String>,
        csr: Option<String>,
        policy_id: Option<String>,
        owner_user_id: Option<String>,
        organization_id: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let subject = optional_json("subject", subject.map(|s| s.as_any()))?;
        let sans = optional_json("sans", sans.map(|s| s.as_any()))?;
        let request: wire::IssueInput = input(
            "request",
            json!({
                "issuer_id": issuer_id,
                "validity_days": validity_days,
                "subject": if subject.is_null() { json!({}) } else { subject },
                "sans": if sans.is_null() { json!([]) } else { sans },
                "kind": kind,
                "key_algorithm": key_algorithm,
                "csr": csr,
                "policy_id": policy_id,
                "owner_user_id": owner_user_id,
                "organization_id": organization_id,
            }),
        )?;
        let request = request.try_into().map_err(raise)?;
        let clm = self.core()?;
        let certificate = block(py, async {
            clm.issue_certificate(&actor.inner, request)
                .await?
                .into_certificate()
        })?;
        record(py, &certificate)
    }

    /// The certificate's private key as PKCS#8 PEM (the export is audited).
    fn export_private_key(
        &self,
        py: Python<'_>,
        actor: &Actor,
        certificate_id: String,
    ) -> PyResult<String> {
        let id = wire::certificate_id(&certificate_id).map_err(raise)?;
        let clm = self.core()?;
        let pem = block(py, clm.export_private_key(&actor.inner, id))?;
        Ok(pem.expose().to_string())
    }

    /// Revokes a certificate for an RFC 5280 reason (`"key_compromise"`,
    /// `"superseded"`, `"certificate_hold"`, ...); returns the revocation.
    #[pyo3(signature = (actor, certificate_id, reason, comment=None))]
    fn revoke_certificate<'py>(
        &self,
        py: Python<'py>,
        actor: &Actor,
        certificate_id: String,
        reason: String,
        comment: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let id = wire::certificate_id(&certificate_id).map_err(raise)?;
        let reason = wire::revocation_reason(&reason).map_err(raise)?;
        let clm = self.core()?;
        let revocation = block(
            py,
            clm.revoke_certificate(&actor.inner, id, reason, comment),
        )?;
        record(py, &revocation)
    }

    /// Signs a CRL for the CA `issuer_id`. Returns `{"issuer_certificate_id",
    /// "crl_number", "pem", "this_update", "next_update", "entries"}`.
    #[pyo3(signature = (actor, issuer_id, next_update_hours=None))]
    fn generate_crl<'py>(
        &self,
        py: Python<'py>,
        actor: &Actor,
        issuer_id: String,
        next_update_hours: Option<u32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let id = wire::certificate_id(&issuer_id).map_err(raise)?;
        let clm = self.core()?;
        let crl = block(py, clm.generate_crl(&actor.inner, id, next_update_hours))?;
        record(py, &crl)
    }

    /// Recomputes an audit chain (`log`: `"secure"` or `"core"`). Returns
    /// `{"log", "rows_checked", "first_sequence", "last_sequence", "broken"}`.
    fn verify_audit_chain<'py>(
        &self,
        py: Python<'py>,
        actor: &Actor,
        log: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let kind = wire::audit_log(&log).map_err(raise)?;
        let clm = self.core()?;
        let report = block(py, clm.verify_audit_chain(&actor.inner, kind))?;
        record(py, &report)
    }
}
