//! `certificates`: the inventory. Lists and searches return light rows (no
//! PEM) unless asked; bulk import goes through [`insert_many`].

use crate::db::{Conn, Dialect};
use crate::model::{
    Certificate, CertificateId, CertificateStatus, OrganizationId, Timestamp, UserId,
};
use crate::store::support::{
    MAX_BIND_PARAMS, after_time_id, certificate_has_san, chunk_rows, contains_ci, fetch_all,
    fetch_page, in_ids_opt, in_texts, insert_one, insert_rows, placeholders, require_row,
    time_id_cursor,
};
use crate::store::{Filter, Page, PageRequest, Value, get_by, live_clause, paginate};
use crate::{Result, exec, on_conn, table};

/// Every column but `certificate_pem`, which light rows return as ''.
const LIGHT_COLUMNS: &str = "id, certificate_id, common_name, subject_dn, issuer_dn, serial_number, not_before,
    not_after, status, fingerprint_sha256, key_algorithm, key_size, signature_algorithm, is_ca, path_len,
    certificate_kind, source, issuer_certificate_id, replaces_certificate_id, subject_key_id, authority_key_id,
    subject_alternative_names, import_flags, '' AS certificate_pem, owner_user_id, organization_id, policy_id,
    policy_version, workflow_id, crl_number, created_at, updated_at, deleted_at";

table!(
    Certificates,
    Certificate,
    "certificates",
    "certificate",
    id = crate::model::CertificateId,
    LIST_COLUMNS: &'static str = LIGHT_COLUMNS;
    insert |c| {
        id: c.id,
        certificate_id: c.certificate_id.as_str(),
        common_name: c.common_name.as_deref(),
        subject_dn: c.subject_dn.as_str(),
        issuer_dn: c.issuer_dn.as_str(),
        serial_number: c.serial_number.as_str(),
        not_before: c.not_before,
        not_after: c.not_after,
        status: c.status.as_str(),
        fingerprint_sha256: c.fingerprint_sha256.as_str(),
        key_algorithm: c.key_algorithm.as_str(),
        key_size: c.key_size,
        signature_algorithm: c.signature_algorithm.as_str(),
        is_ca: c.is_ca,
        path_len: c.path_len,
        certificate_kind: c.certificate_kind.as_str(),
        source: c.source.as_str(),
        issuer_certificate_id: c.issuer_certificate_id,
        replaces_certificate_id: c.replaces_certificate_id,
        subject_key_id: c.subject_key_id.as_deref(),
        authority_key_id: c.authority_key_id.as_deref(),
        subject_alternative_names: &c.subject_alternative_names,
        import_flags: &c.import_flags,
        certificate_pem: c.certificate_pem.as_str(),
        owner_user_id: c.owner_user_id,
        organization_id: c.organization_id,
        policy_id: c.policy_id,
        policy_version: c.policy_version,
        workflow_id: c.workflow_id,
        crl_number: c.crl_number,
        created_at: c.created_at,
        updated_at: c.updated_at,
        deleted_at: c.deleted_at,
    }
);

/// Rows per multi-row INSERT on SQLite (the rest of a batch goes in
/// statements of halving sizes; see `store::support::SQLITE_ROWS_PER_INSERT`).
pub const INSERT_CHUNK_ROWS: usize = chunk_rows::<Certificates>();

/// What a certificate listing or search may filter on. All set fields must match.
#[derive(Debug, Clone, Default)]
pub struct CertificateFilter {
    /// Case-insensitive substring of the common name.
    pub common_name: Option<String>,
    /// A subject alternative name value, matched exactly (any type).
    pub san: Option<String>,
    /// The serial in its stored form (lowercase hex of the DER content bytes).
    pub serial_number: Option<String>,
    pub issuer_certificate_id: Option<CertificateId>,
    pub status: Option<Vec<CertificateStatus>>,
    /// `not_after <= expires_before`.
    pub expires_before: Option<Timestamp>,
    /// `not_after > expires_after`.
    pub expires_after: Option<Timestamp>,
    pub owner_user_id: Option<UserId>,
    /// Only certificates of these organizations (empty = none).
    pub organization_ids: Option<Vec<OrganizationId>>,
    pub is_ca: Option<bool>,
    /// Return `certificate_pem` too (otherwise it reads as '').
    pub with_pem: bool,
}

pub async fn insert(conn: &mut Conn<'_>, certificate: &Certificate) -> Result<()> {
    insert_one::<Certificates>(conn, certificate).await
}

/// Inserts many certificates: on PostgreSQL one statement of column arrays,
/// on SQLite multi-row INSERTs of [`INSERT_CHUNK_ROWS`] rows, then the rest
/// in halving sizes. Not atomic by
/// itself: run it in a transaction for all-or-nothing. A certificate naming
/// another of the same slice as issuer must come after it.
pub async fn insert_many(conn: &mut Conn<'_>, certificates: &[Certificate]) -> Result<u64> {
    insert_rows::<Certificates>(conn, certificates).await
}

/// Writes the mutable columns: status, links, ownership, policy and CRL
/// number. The certificate itself (PEM, names, validity) never changes.
pub async fn update(conn: &mut Conn<'_>, certificate: &Certificate) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE certificates SET status = $2, issuer_certificate_id = $3, replaces_certificate_id = $4,
            import_flags = $5, owner_user_id = $6, organization_id = $7, policy_id = $8, policy_version = $9,
            workflow_id = $10, crl_number = $11
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(certificate.id)
    .bind(certificate.status)
    .bind(certificate.issuer_certificate_id)
    .bind(certificate.replaces_certificate_id)
    .bind(&certificate.import_flags)
    .bind(certificate.owner_user_id)
    .bind(certificate.organization_id)
    .bind(certificate.policy_id)
    .bind(certificate.policy_version)
    .bind(certificate.workflow_id)
    .bind(certificate.crl_number)
    })?;
    require_row(affected, "certificate", certificate.id)
}

pub async fn get_by_certificate_id(
    conn: &mut Conn<'_>,
    certificate_id: &str,
) -> Result<Certificate> {
    get_by::<Certificates>(conn, "certificate_id", certificate_id).await
}

/// The live certificate with this fingerprint in one scope: an
/// organization's, or the shared rows' (None). Fingerprints are unique per
/// scope, not across them.
pub async fn get_by_fingerprint(
    conn: &mut Conn<'_>,
    organization_id: Option<OrganizationId>,
    fingerprint_sha256: &str,
) -> Result<Certificate> {
    let filter = in_scope(
        Filter::new().eq("fingerprint_sha256", fingerprint_sha256),
        organization_id,
    );
    fetch_all::<Certificate>(
        conn,
        "SELECT * FROM certificates WHERE deleted_at IS NULL",
        &filter,
        " LIMIT 1",
    )
    .await?
    .pop()
    .ok_or_else(|| crate::Error::not_found("certificate", fingerprint_sha256))
}

/// Rows of exactly one scope: the organization's, or the shared ones (no
/// organization) for None. The scope that fingerprint uniqueness and import
/// de-duplication work in.
fn in_scope(filter: Filter, organization_id: Option<OrganizationId>) -> Filter {
    match organization_id {
        Some(org) => filter.eq("organization_id", crate::store::id_value(org)),
        None => filter.clause("organization_id IS NULL", Vec::new()),
    }
}

fn filter_clauses(conn: &Conn<'_>, filter: &CertificateFilter) -> Filter {
    let dialect = conn.dialect();
    let mut f = Filter::new()
        .eq_opt(
            "issuer_certificate_id",
            filter.issuer_certificate_id.map(crate::store::id_value),
        )
        .eq_opt(
            "owner_user_id",
            filter.owner_user_id.map(crate::store::id_value),
        )
        .eq_opt("is_ca", filter.is_ca)
        .eq_opt("serial_number", filter.serial_number.as_deref());
    if let Some(name) = &filter.common_name {
        f = contains_ci(f, dialect, "common_name", name);
    }
    if let Some(san) = &filter.san {
        f = certificate_has_san(f, dialect, san);
    }
    if let Some(status) = &filter.status {
        f = in_texts(f, "status", status);
    }
    if let Some(before) = filter.expires_before {
        f = f.clause("not_after <= ?", vec![Value::Time(before)]);
    }
    if let Some(after) = filter.expires_after {
        f = f.clause("not_after > ?", vec![Value::Time(after)]);
    }
    in_ids_opt(f, "organization_id", filter.organization_ids.as_ref())
}

fn select_head(filter: &CertificateFilter, page: &PageRequest) -> String {
    let columns = if filter.with_pem { "*" } else { LIGHT_COLUMNS };
    format!(
        "SELECT {columns} FROM certificates WHERE 1 = 1{}",
        live_clause::<Certificates>(page.include_deleted)
    )
}

/// Keyset pages in id (creation) order.
pub async fn list_certificates(
    conn: &mut Conn<'_>,
    filter: &CertificateFilter,
    page: &PageRequest,
) -> Result<Page<Certificate>> {
    let limit = page.effective_limit()?;
    let mut f = filter_clauses(conn, filter);
    if let Some(after) = page.cursor_id()? {
        f = f.clause("id > ?", vec![Value::Id(after)]);
    }
    let mut rows = fetch_page(conn, &select_head(filter, page), &f, "id", limit).await?;
    Ok(paginate(&mut rows, limit, |c: &Certificate| {
        c.id.to_string()
    }))
}

/// Keyset pages in expiry order `(not_after, id)`; the cursor encodes both.
/// Served by `idx_certificates_live_expiry`.
pub async fn search_certificates(
    conn: &mut Conn<'_>,
    filter: &CertificateFilter,
    page: &PageRequest,
) -> Result<Page<Certificate>> {
    let limit = page.effective_limit()?;
    let f = after_time_id(
        filter_clauses(conn, filter),
        "not_after",
        "id",
        page.cursor.as_deref(),
        false,
    )?;
    let mut rows = fetch_page(conn, &select_head(filter, page), &f, "not_after, id", limit).await?;
    Ok(paginate(&mut rows, limit, |c: &Certificate| {
        time_id_cursor(c.not_after, c.id)
    }))
}

pub async fn update_status(
    conn: &mut Conn<'_>,
    id: CertificateId,
    status: CertificateStatus,
) -> Result<()> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE certificates SET status = $2 WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(id)
    .bind(status))?;
    require_row(affected, "certificate", id)
}

/// Records the number of the CRL last issued by this CA.
pub async fn set_crl_number(conn: &mut Conn<'_>, id: CertificateId, crl_number: i64) -> Result<()> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE certificates SET crl_number = $2 WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(id)
    .bind(crl_number))?;
    require_row(affected, "certificate", id)
}

/// Which of these fingerprints are already stored in one scope (see
/// [`get_by_fingerprint`]; deleted rows included: the unique indexes cover
/// them), for import de-duplication. Other scopes are never looked at, so
/// an import cannot tell what another organization holds.
pub async fn find_by_fingerprints(
    conn: &mut Conn<'_>,
    organization_id: Option<OrganizationId>,
    fingerprints: &[String],
) -> Result<Vec<(String, CertificateId)>> {
    #[cfg(feature = "postgres")]
    #[cfg_attr(not(feature = "sqlite"), allow(irrefutable_let_patterns))]
    if let Conn::Postgres(c) = conn {
        let sql = format!(
            "SELECT fingerprint_sha256, id FROM certificates WHERE fingerprint_sha256 = ANY($1) AND {}",
            array_scope(organization_id)
        );
        let mut query = sqlx::query_as::<_, (String, CertificateId)>(sqlx::AssertSqlSafe(sql))
            .bind(fingerprints);
        if let Some(org) = organization_id {
            query = query.bind(org);
        }
        return Ok(query.fetch_all(&mut **c).await?);
    }
    let mut found = Vec::new();
    for chunk in fingerprints.chunks(MAX_BIND_PARAMS - 1) {
        let (marks, scope) = scoped_in_list(conn.dialect(), chunk.len(), organization_id);
        let sql = format!(
            "SELECT fingerprint_sha256, id FROM certificates WHERE fingerprint_sha256 IN ({marks}) AND {scope}"
        );
        let rows = on_conn!(conn, |c| {
            let mut query = sqlx::query_as::<_, (String, CertificateId)>(sqlx::AssertSqlSafe(sql));
            for fingerprint in chunk {
                query = query.bind(fingerprint);
            }
            if let Some(org) = organization_id {
                query = query.bind(org);
            }
            query.fetch_all(&mut *c).await
        })?;
        found.extend(rows);
    }
    Ok(found)
}

/// The scope condition after an `= ANY($1)` (PostgreSQL): the organization
/// is `$2`. One array parameter keeps the statement, and the plan PostgreSQL
/// caches for it, the same for any number of values; with a list of
/// parameters, the generic plan it settles on after a few executions
/// compares every row of the scope with every value (1.7 s per lookup of
/// 1,000 fingerprints among 70,000 certificates, measured).
#[cfg(feature = "postgres")]
fn array_scope(organization_id: Option<OrganizationId>) -> &'static str {
    match organization_id {
        None => "organization_id IS NULL",
        Some(_) => "organization_id = $2",
    }
}

/// SQLite: placeholders for an `IN` list of `n` values followed by the scope
/// condition (`organization_id = <mark>`, or `IS NULL` for the shared scope),
/// bound in that order. Hand-built with [`placeholders`] rather than a
/// [`Filter`]: SQLite parses thousands of `$N` in quadratic time.
fn scoped_in_list(
    dialect: Dialect,
    n: usize,
    organization_id: Option<OrganizationId>,
) -> (String, String) {
    match organization_id {
        None => (
            placeholders(dialect, 1, n),
            "organization_id IS NULL".to_string(),
        ),
        Some(_) => {
            let marks = placeholders(dialect, 1, n + 1);
            let (list, org) = marks.rsplit_once(", ").unwrap_or(("", marks.as_str()));
            (list.to_string(), format!("organization_id = {org}"))
        }
    }
}

/// Live certificates with this subject key identifier (hex).
pub async fn find_by_subject_key_id(
    conn: &mut Conn<'_>,
    subject_key_id: &str,
) -> Result<Vec<Certificate>> {
    fetch_all(
        conn,
        "SELECT * FROM certificates WHERE deleted_at IS NULL",
        &Filter::new().eq("subject_key_id", subject_key_id),
        " ORDER BY not_after DESC, id",
    )
    .await
}

/// Live CA certificates whose subject is `issuer_dn`: possible issuers of a
/// certificate, newest first.
pub async fn find_issuer_candidates(
    conn: &mut Conn<'_>,
    issuer_dn: &str,
) -> Result<Vec<Certificate>> {
    fetch_all(
        conn,
        "SELECT * FROM certificates WHERE deleted_at IS NULL",
        &Filter::new().eq("subject_dn", issuer_dn).eq("is_ca", true),
        " ORDER BY not_after DESC, id",
    )
    .await
}

/// Moves live in-service certificates along the clock: active/expiring ->
/// expired when `not_after <= now`; active -> expiring within
/// `default_threshold_days`. Revoked, suspended and pending rows stay as they are.
/// Returns (expired, expiring) counts.
pub async fn refresh_statuses(
    conn: &mut Conn<'_>,
    now: Timestamp,
    default_threshold_days: u32,
) -> Result<(u64, u64)> {
    let horizon = now + chrono::Duration::days(i64::from(default_threshold_days));
    let expired = exec!(conn, |c| sqlx::query(
        "UPDATE certificates SET status = 'expired'
         WHERE deleted_at IS NULL AND status IN ('active', 'expiring') AND not_after <= $1"
    )
    .bind(now))?;
    let expiring = exec!(conn, |c| sqlx::query(
        "UPDATE certificates SET status = 'expiring'
         WHERE deleted_at IS NULL AND status = 'active' AND not_after <= $1"
    )
    .bind(horizon))?;
    Ok((expired, expiring))
}

/// Whether an issued certificate with this serial exists under the issuer
/// (`None`: self-signed roots), deleted rows included.
pub async fn exists_serial(
    conn: &mut Conn<'_>,
    issuer_id: Option<CertificateId>,
    serial_number: &str,
) -> Result<bool> {
    let found = match issuer_id {
        Some(issuer) => on_conn!(conn, |c| {
            sqlx::query_scalar::<_, i32>(
            "SELECT 1 FROM certificates WHERE issuer_certificate_id = $1 AND serial_number = $2 LIMIT 1"
        )
        .bind(issuer)
        .bind(serial_number)
        .fetch_optional(&mut *c)
        .await
        })?,
        None => on_conn!(conn, |c| {
            sqlx::query_scalar::<_, i32>(
            "SELECT 1 FROM certificates WHERE issuer_certificate_id IS NULL AND serial_number = $1 LIMIT 1"
        )
        .bind(serial_number)
        .fetch_optional(&mut *c)
        .await
        })?,
    };
    Ok(found.is_some())
}

/// Ids of certificates (deleted included) after `after` in id order: the
/// reconcile walk.
pub async fn ids_after(
    conn: &mut Conn<'_>,
    after: Option<CertificateId>,
    limit: u32,
) -> Result<Vec<CertificateId>> {
    let after = after.unwrap_or(CertificateId(uuid::Uuid::nil()));
    Ok(on_conn!(conn, |c| sqlx::query_scalar::<_, CertificateId>(
        "SELECT id FROM certificates WHERE id > $1 ORDER BY id LIMIT $2"
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await)?)
}

/// Records the URLs a CA writes into what it issues (`issuance_urls`, JSON).
pub async fn set_issuance_urls(
    conn: &mut Conn<'_>,
    id: CertificateId,
    urls: &serde_json::Value,
) -> Result<()> {
    let urls = sqlx::types::Json(urls);
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE certificates SET issuance_urls = $2 WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(id)
    .bind(urls))?;
    require_row(affected, "certificate", id)
}

/// The URLs a CA writes into what it issues; None when none were configured.
pub async fn issuance_urls(
    conn: &mut Conn<'_>,
    id: CertificateId,
) -> Result<Option<serde_json::Value>> {
    let found = on_conn!(conn, |c| sqlx::query_scalar::<
        _,
        Option<sqlx::types::Json<serde_json::Value>>,
    >(
        "SELECT issuance_urls FROM certificates WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await)?;
    Ok(found.flatten().map(|json| json.0))
}

// ------------------------------------------------ inventory, status, CRLs

/// [`search_certificates`] restricted to certificates shared by everyone (no
/// organization) or of `visible`; no restriction when `visible` is None.
pub async fn search_visible(
    conn: &mut Conn<'_>,
    filter: &CertificateFilter,
    visible: Option<&Vec<OrganizationId>>,
    page: &PageRequest,
) -> Result<Page<Certificate>> {
    let limit = page.effective_limit()?;
    let f = crate::store::support::shared_or_in_orgs(
        filter_clauses(conn, filter),
        "organization_id",
        visible,
    );
    let f = after_time_id(f, "not_after", "id", page.cursor.as_deref(), false)?;
    let mut rows = fetch_page(conn, &select_head(filter, page), &f, "not_after, id", limit).await?;
    Ok(paginate(&mut rows, limit, |c: &Certificate| {
        time_id_cursor(c.not_after, c.id)
    }))
}

/// Live CA certificates whose subject is one of `subjects` (possible issuers
/// of an import into `organization_id`), newest first: shared CAs and the
/// organization's own, never another organization's (a link to one would
/// put the importer's revocations on that organization's CRL).
pub async fn find_cas_by_subjects(
    conn: &mut Conn<'_>,
    organization_id: Option<OrganizationId>,
    subjects: &[String],
) -> Result<Vec<Certificate>> {
    #[cfg(feature = "postgres")]
    #[cfg_attr(not(feature = "sqlite"), allow(irrefutable_let_patterns))]
    if let Conn::Postgres(c) = conn {
        let sql = format!(
            "SELECT * FROM certificates WHERE deleted_at IS NULL AND is_ca = TRUE AND subject_dn = ANY($1)
               AND (organization_id IS NULL OR {})
             ORDER BY not_after DESC, id",
            array_scope(organization_id)
        );
        let mut query = sqlx::query_as::<_, Certificate>(sqlx::AssertSqlSafe(sql)).bind(subjects);
        if let Some(org) = organization_id {
            query = query.bind(org);
        }
        return Ok(query.fetch_all(&mut **c).await?);
    }
    let mut found = Vec::new();
    for chunk in subjects.chunks(MAX_BIND_PARAMS - 1) {
        let (marks, scope) = scoped_in_list(conn.dialect(), chunk.len(), organization_id);
        let sql = format!(
            "SELECT * FROM certificates WHERE deleted_at IS NULL AND is_ca = TRUE AND subject_dn IN ({marks})
               AND (organization_id IS NULL OR {scope})
             ORDER BY not_after DESC, id"
        );
        let rows = on_conn!(conn, |c| {
            let mut query = sqlx::query_as::<_, Certificate>(sqlx::AssertSqlSafe(sql));
            for subject in chunk {
                query = query.bind(subject);
            }
            if let Some(org) = organization_id {
                query = query.bind(org);
            }
            query.fetch_all(&mut *c).await
        })?;
        found.extend(rows);
    }
    Ok(found)
}

/// pending/active/expiring -> expired for live certificates with
/// `not_after <= at`. Revoked and suspended rows are never touched.
pub async fn mark_expired(conn: &mut Conn<'_>, at: Timestamp) -> Result<u64> {
    Ok(exec!(conn, |c| {
        sqlx::query(
        "UPDATE certificates SET status = 'expired'
         WHERE deleted_at IS NULL AND status IN ('pending', 'active', 'expiring') AND not_after <= $1"
    )
    .bind(at)
    })?)
}

/// pending -> active for live certificates valid at `at`.
pub async fn mark_active(conn: &mut Conn<'_>, at: Timestamp) -> Result<u64> {
    Ok(exec!(conn, |c| sqlx::query(
        "UPDATE certificates SET status = 'active'
         WHERE deleted_at IS NULL AND status = 'pending' AND not_before <= $1 AND not_after > $1"
    )
    .bind(at))?)
}

/// Which certificates a renewal threshold applies to.
#[derive(Debug, Clone, Copy)]
pub enum PolicyScope<'a> {
    /// Issued under one of these policies.
    In(&'a [crate::model::PolicyId]),
    /// Under no policy, or one not in this list.
    NotIn(&'a [crate::model::PolicyId]),
}

/// active -> expiring for live certificates in `scope` with `not_after <= horizon`.
pub async fn mark_expiring(
    conn: &mut Conn<'_>,
    horizon: Timestamp,
    scope: PolicyScope<'_>,
) -> Result<u64> {
    let (ids, negate) = match scope {
        PolicyScope::In(ids) => (ids, false),
        PolicyScope::NotIn(ids) => (ids, true),
    };
    if !negate && ids.is_empty() {
        return Ok(0);
    }
    // One placeholder style per statement (SQLite numbers `?` and `$N` apart).
    let marks = placeholders(conn.dialect(), 1, ids.len() + 1);
    let (horizon_mark, id_marks) = marks.split_once(", ").unwrap_or((marks.as_str(), ""));
    let clause = match (negate, ids.is_empty()) {
        (true, true) => String::new(),
        (true, false) => format!(" AND (policy_id IS NULL OR policy_id NOT IN ({id_marks}))"),
        (false, _) => format!(" AND policy_id IN ({id_marks})"),
    };
    let sql = format!(
        "UPDATE certificates SET status = 'expiring'
         WHERE deleted_at IS NULL AND status = 'active' AND not_after <= {horizon_mark}{clause}"
    );
    Ok(exec!(conn, |c| {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(horizon);
        for id in ids {
            query = query.bind(*id);
        }
        query
    })?)
}

/// Takes the CA's next CRL number: one atomic increment that holds the row
/// lock until the transaction ends (PostgreSQL), or under SQLite's write lock.
/// NotFound when the row is missing or deleted.
pub async fn next_crl_number(conn: &mut Conn<'_>, id: CertificateId) -> Result<i64> {
    let number = on_conn!(conn, |c| sqlx::query_scalar::<_, i64>(
        "UPDATE certificates SET crl_number = crl_number + 1
         WHERE id = $1 AND deleted_at IS NULL RETURNING crl_number"
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await)?;
    number.ok_or_else(|| crate::Error::not_found("certificate", id))
}

/// A CA row with its `issuance_urls`.
#[derive(sqlx::FromRow)]
struct AuthorityRow {
    #[sqlx(flatten)]
    certificate: Certificate,
    issuance_urls: Option<sqlx::types::Json<serde_json::Value>>,
}

/// Live CA certificates whose private key clm holds (the issuers it can sign
/// with), shared or of `organizations` (None: all), oldest first.
pub async fn list_signing_authorities(
    conn: &mut Conn<'_>,
    organizations: Option<&Vec<OrganizationId>>,
) -> Result<Vec<(Certificate, Option<serde_json::Value>)>> {
    let filter = crate::store::support::shared_or_in_orgs(
        Filter::new().eq("is_ca", true),
        "organization_id",
        organizations,
    );
    let rows: Vec<AuthorityRow> = fetch_all(
        conn,
        "SELECT * FROM certificates WHERE deleted_at IS NULL
           AND id IN (SELECT certificate_id FROM private_keys WHERE deleted_at IS NULL)",
        &filter,
        " ORDER BY id",
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.certificate, row.issuance_urls.map(|json| json.0)))
        .collect())
}

/// Live `expiring` certificates of the given policies that have neither a
/// successor nor an open renewal request, nor one a person turned down
/// (rejected or cancelled: asking again every run would be a storm): what
/// auto-renewal should renew.
pub async fn renewal_candidates(
    conn: &mut Conn<'_>,
    policy_ids: &[crate::model::PolicyId],
    limit: u32,
) -> Result<Vec<Certificate>> {
    if policy_ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = crate::store::support::placeholders(conn.dialect(), 1, policy_ids.len());
    let limit_mark = match conn.dialect() {
        Dialect::Postgres => format!("${}", policy_ids.len() + 1),
        Dialect::Sqlite => "?".to_string(),
    };
    let sql = format!(
        "SELECT * FROM certificates c
         WHERE c.deleted_at IS NULL AND c.status = 'expiring' AND c.policy_id IN ({marks})
           AND NOT EXISTS (SELECT 1 FROM certificates n WHERE n.replaces_certificate_id = c.id AND n.deleted_at IS NULL)
           AND NOT EXISTS (SELECT 1 FROM certificate_requests r WHERE r.renewal_of_certificate_id = c.id
                           AND r.status IN ('pending', 'pending_approval', 'approved', 'rejected', 'cancelled'))
         ORDER BY c.not_after, c.id LIMIT {limit_mark}"
    );
    Ok(on_conn!(conn, |c| {
        let mut query = sqlx::query_as::<_, Certificate>(sqlx::AssertSqlSafe(sql));
        for id in policy_ids {
            query = query.bind(*id);
        }
        query.bind(i64::from(limit)).fetch_all(&mut *c).await
    })?)
}

/// Whether `issuer` issued `serial` through clm (a row deleted from the
/// inventory included: the certificate still exists), and the organizations
/// of live imported certificates with that serial under it (the service
/// decides which of those are in the issuer's scope). Index probes only
/// (`uq_certificates_issuer_serial`, `idx_certificates_issuer_serial_imported`).
pub async fn by_issuer_serial(
    conn: &mut Conn<'_>,
    issuer: CertificateId,
    serial: &str,
) -> Result<(bool, Vec<Option<OrganizationId>>)> {
    let issued: Option<(CertificateId,)> = on_conn!(conn, |c| sqlx::query_as(
        "SELECT id FROM certificates
         WHERE issuer_certificate_id = $1 AND serial_number = $2 AND source = 'issued'"
    )
    .bind(issuer)
    .bind(serial)
    .fetch_optional(&mut *c)
    .await)?;
    if issued.is_some() {
        return Ok((true, Vec::new()));
    }
    let imported: Vec<(Option<OrganizationId>,)> = on_conn!(conn, |c| sqlx::query_as(
        "SELECT organization_id FROM certificates
         WHERE issuer_certificate_id = $1 AND serial_number = $2 AND source = 'imported'
           AND deleted_at IS NULL LIMIT 16"
    )
    .bind(issuer)
    .bind(serial)
    .fetch_all(&mut *c)
    .await)?;
    Ok((false, imported.into_iter().map(|(org,)| org).collect()))
}

/// Live CA certificates whose private key clm holds: the issuers an OCSP
/// responder answers for (id, organization, status, PEM).
pub async fn held_authorities(
    conn: &mut Conn<'_>,
) -> Result<
    Vec<(
        CertificateId,
        Option<OrganizationId>,
        CertificateStatus,
        String,
    )>,
> {
    Ok(on_conn!(conn, |c| sqlx::query_as(
        "SELECT c.id, c.organization_id, c.status, c.certificate_pem FROM certificates c
         WHERE c.is_ca AND c.deleted_at IS NULL
           AND EXISTS (SELECT 1 FROM private_keys k
                       WHERE k.certificate_id = c.id AND k.deleted_at IS NULL)"
    )
    .fetch_all(&mut *c)
    .await)?)
}
