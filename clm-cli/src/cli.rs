//! The command line's definition: every command, flag and help text. The
//! completions and the man page are generated from it too.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::Format;

/// clm: certificates, keys, policies, workflows and audit from a terminal.
#[derive(Debug, Parser)]
#[command(name = "clm", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Settings: flags beat CLM_* environment variables, which beat clm.toml, \
which beats defaults (see `clm config show`). Exit status: 0 success, 2 usage, 10 + the \
library's error number (11 NOT_FOUND ... 23 STORAGE_FULL), 130 interrupted."
)]
pub struct Cli {
    /// Settings every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The clm.toml to read (default: CLM_CONFIG, else ./clm.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// SQLite: the directory of secure.db and core.db (CLM_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL: the secure database's URL (CLM_SECURE_DATABASE_URL; prefer
    /// the variable for a URL holding a password).
    #[arg(long, global = true, value_name = "URL")]
    pub secure_url: Option<String>,
    /// PostgreSQL: the core database's URL (CLM_CORE_DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub core_url: Option<String>,
    /// The file holding the master key (CLM_MASTER_KEY_FILE; default
    /// DATA_DIR/master.key for SQLite).
    #[arg(long, global = true, value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Act with the API key in FILE instead of the login session (CLM_API_KEY_FILE).
    #[arg(long, global = true, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Act as the system (every permission): needs the master key from a file.
    #[arg(long, global = true)]
    pub as_system: bool,
    /// Output format (CLM_OUTPUT): table on a terminal, JSON when piped.
    #[arg(long, short = 'o', global = true, value_enum)]
    pub output: Option<Format>,
    /// Print only the value at PATH of the result (dotted: certificate.id,
    /// items.0.id), as plain text: for scripts.
    #[arg(long, global = true, value_name = "PATH")]
    pub get: Option<String>,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Creates the store, the master key file (0600) and the first administrator.
    Init(InitArgs),
    /// Logs in and keeps the session token (0600) for later commands.
    Login(LoginArgs),
    /// Ends the kept session and deletes its token.
    Logout,
    /// Who the commands act as.
    Whoami,
    /// The settings in force and where each comes from.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Certificate authorities.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Certificates.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Certificate signing requests.
    #[command(subcommand)]
    Csr(CsrCommand),
    /// Private keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Imports certificates from files and directories (recursively).
    Import(ImportArgs),
    /// Certificate revocation lists.
    #[command(subcommand)]
    Crl(CrlCommand),
    /// The OCSP responder.
    #[command(subcommand)]
    Ocsp(OcspCommand),
    /// Certificate policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Approval workflows.
    #[command(subcommand)]
    Workflow(WorkflowCommand),
    /// Approvals waiting for you.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Users.
    #[command(subcommand)]
    User(UserCommand),
    /// Roles.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// API keys.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// The audit trails.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Data and master keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The lifecycle pass (statuses, notices, renewals, CRLs), for cron.
    #[command(subcommand)]
    Lifecycle(LifecycleCommand),
    /// Database statistics and maintenance.
    #[command(subcommand)]
    Db(DbCommand),
    /// Prints a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Prints the man page (roff).
    Man,
}

/// `clm init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The administrator's username.
    #[arg(long, default_value = "admin")]
    pub admin_username: String,
    /// The administrator's email.
    #[arg(long)]
    pub admin_email: String,
    /// The administrator's display name.
    #[arg(long)]
    pub display_name: Option<String>,
    /// Read the password from the first line of stdin (no prompt).
    #[arg(long)]
    pub password_stdin: bool,
    /// PostgreSQL: do not create missing databases.
    #[arg(long)]
    pub no_create_databases: bool,
}

/// `clm login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username or email.
    #[arg(long, short = 'u')]
    pub username: String,
    /// Read the password from the first line of stdin (no prompt).
    #[arg(long)]
    pub password_stdin: bool,
    /// The one-time code, when MFA is on.
    #[arg(long)]
    pub otp: Option<String>,
}

/// `clm config`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Every setting, its value (secrets redacted) and its source.
    Show,
}

/// A subject and its names.
#[derive(Debug, Args, Clone, Default)]
pub struct SubjectArgs {
    /// Common name (CN).
    #[arg(long)]
    pub cn: Option<String>,
    /// Organization (O).
    #[arg(long)]
    pub org: Option<String>,
    /// Organizational unit (OU).
    #[arg(long)]
    pub ou: Option<String>,
    /// Country (C), two letters.
    #[arg(long)]
    pub country: Option<String>,
    /// State or province (ST).
    #[arg(long)]
    pub state: Option<String>,
    /// Locality (L).
    #[arg(long)]
    pub locality: Option<String>,
}

/// What a new CA carries.
#[derive(Debug, Args)]
pub struct NewCaArgs {
    /// The CA's subject.
    #[command(flatten)]
    pub subject: SubjectArgs,
    /// RSA-2048, RSA-3072, RSA-4096, ECDSA-P256, ECDSA-P384 or Ed25519.
    #[arg(long, default_value = "ECDSA-P384")]
    pub key_algorithm: String,
    /// Days of validity.
    #[arg(long)]
    pub validity_days: Option<u32>,
    /// Path length constraint.
    #[arg(long)]
    pub path_len: Option<u8>,
    /// CRL distribution point URL written into what it issues (repeatable).
    #[arg(long = "crl-url")]
    pub crl_urls: Vec<String>,
    /// caIssuers URL written into what it issues (repeatable).
    #[arg(long = "ca-issuers-url")]
    pub ca_issuers_urls: Vec<String>,
    /// OCSP URL written into what it issues (repeatable).
    #[arg(long = "ocsp-url")]
    pub ocsp_urls: Vec<String>,
    /// Name constraint: a name form this CA may certify (repeatable):
    /// DNS:example.com, IP:10.0.0.0/8, EMAIL:example.com, URI:.example.com.
    #[arg(long = "permitted")]
    pub permitted: Vec<String>,
    /// Name constraint: a name form this CA may not certify (repeatable).
    #[arg(long = "excluded")]
    pub excluded: Vec<String>,
    /// Publish delta CRLs too.
    #[arg(long)]
    pub delta_crls: bool,
    /// Split its CRL into N partitions.
    #[arg(long, value_name = "N")]
    pub crl_partitions: Option<u32>,
    /// The organization it belongs to (id).
    #[arg(long)]
    pub organization_id: Option<String>,
}

/// `clm ca`.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Creates a self-signed root CA.
    CreateRoot(NewCaArgs),
    /// Creates an intermediate CA signed by a CA in clm.
    CreateIntermediate {
        /// The signing CA (certificate id).
        #[arg(long)]
        issuer: String,
        /// The new CA.
        #[command(flatten)]
        new: NewCaArgs,
    },
    /// Every CA you can see.
    List,
    /// One CA.
    Show {
        /// Certificate id or SHA-256 fingerprint.
        id: String,
    },
    /// CA rollover: successor, cross certificates, reissued leaves.
    #[command(subcommand)]
    Rollover(RolloverCommand),
}

/// The successor's options.
#[derive(Debug, Args)]
pub struct RolloverArgs {
    /// The CA (certificate id).
    pub id: String,
    /// The successor's key algorithm (default: the old CA's).
    #[arg(long)]
    pub key_algorithm: Option<String>,
    /// The successor's validity in days.
    #[arg(long)]
    pub validity_days: Option<u32>,
    /// Days old and new overlap.
    #[arg(long)]
    pub overlap_days: Option<u32>,
}

/// `clm ca rollover`.
#[derive(Debug, Subcommand)]
pub enum RolloverCommand {
    /// What a rollover would do (changes nothing).
    Plan(RolloverArgs),
    /// Starts or resumes a rollover (Ctrl-C stops after the current batch).
    Run {
        /// The CA and the successor's options.
        #[command(flatten)]
        args: RolloverArgs,
        /// Leaves reissued per batch.
        #[arg(long)]
        batch_size: Option<u32>,
    },
    /// The newest rollover of a CA.
    Status {
        /// The CA (certificate id).
        id: String,
    },
}

/// What an issued certificate is for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// TLS server.
    TlsServer,
    /// TLS client.
    TlsClient,
    /// TLS server and client.
    TlsServerClient,
    /// Code signing.
    CodeSigning,
    /// S/MIME.
    Email,
}

impl Kind {
    /// The library's name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::TlsServer => "tls_server",
            Kind::TlsClient => "tls_client",
            Kind::TlsServerClient => "tls_server_client",
            Kind::CodeSigning => "code_signing",
            Kind::Email => "email",
        }
    }
}

/// Where an issued certificate (and its key) go.
#[derive(Debug, Args)]
pub struct IssueCommon {
    /// The signing CA (certificate id).
    #[arg(long)]
    pub issuer: String,
    /// The policy (code or id); required unless you are a global administrator.
    #[arg(long)]
    pub policy: Option<String>,
    /// Days of validity.
    #[arg(long, default_value_t = 90)]
    pub validity_days: u32,
    /// What it is for.
    #[arg(long, value_enum, default_value = "tls-server")]
    pub kind: Kind,
    /// The organization it belongs to (id).
    #[arg(long)]
    pub organization_id: Option<String>,
    /// Its owner (user id; default you).
    #[arg(long)]
    pub owner: Option<String>,
    /// Also write the certificate's PEM to FILE.
    #[arg(long, value_name = "FILE")]
    pub cert_out: Option<PathBuf>,
}

/// Revocation reasons.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Reason {
    /// No reason given.
    Unspecified,
    /// The private key leaked.
    KeyCompromise,
    /// The CA's key leaked.
    CaCompromise,
    /// Name or affiliation changed.
    AffiliationChanged,
    /// Replaced by another certificate.
    Superseded,
    /// No longer needed.
    CessationOfOperation,
    /// Privileges withdrawn.
    PrivilegeWithdrawn,
}

impl Reason {
    /// The library's name.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Unspecified => "unspecified",
            Reason::KeyCompromise => "key_compromise",
            Reason::CaCompromise => "ca_compromise",
            Reason::AffiliationChanged => "affiliation_changed",
            Reason::Superseded => "superseded",
            Reason::CessationOfOperation => "cessation_of_operation",
            Reason::PrivilegeWithdrawn => "privilege_withdrawn",
        }
    }
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// PEM certificate.
    Pem,
    /// DER certificate.
    Der,
    /// The certificate and its issuers up to the root, PEM.
    PemChain,
    /// PKCS #7 certs-only, DER (.p7b).
    P7b,
    /// PKCS #12 with the private key, under --password-file.
    P12,
}

/// `clm cert`.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Issues a certificate with a key clm generates and keeps sealed.
    Issue {
        /// Issuer, policy, validity, kind, outputs.
        #[command(flatten)]
        common: IssueCommon,
        /// The subject.
        #[command(flatten)]
        subject: SubjectArgs,
        /// Subject alternative name: DNS:name, IP:addr, EMAIL:addr, URI:uri,
        /// or a bare name or address (repeatable).
        #[arg(long = "san")]
        sans: Vec<String>,
        /// The key's algorithm.
        #[arg(long, default_value = "ECDSA-P256")]
        key_algorithm: String,
        /// Also export the private key (PKCS#8 PEM, mode 0600) to FILE.
        #[arg(long, value_name = "FILE")]
        key_out: Option<PathBuf>,
    },
    /// Signs a PKCS#10 CSR (the key stays with you).
    SignCsr {
        /// Issuer, policy, validity, kind, outputs.
        #[command(flatten)]
        common: IssueCommon,
        /// The CSR file (PEM).
        #[arg(long)]
        csr: PathBuf,
    },
    /// Renews a certificate (a new key unless --reuse-key).
    Renew {
        /// Certificate id.
        id: String,
        /// Days of validity of the new certificate.
        #[arg(long)]
        validity_days: Option<u32>,
        /// Keep the key.
        #[arg(long)]
        reuse_key: bool,
    },
    /// Revokes a certificate.
    Revoke {
        /// Certificate id.
        id: String,
        /// Why.
        #[arg(long, value_enum, default_value = "unspecified")]
        reason: Reason,
        /// A comment kept with the revocation.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Suspends a certificate (certificate_hold).
    Hold {
        /// Certificate id.
        id: String,
        /// A comment kept with the hold.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Releases a hold.
    Release {
        /// Certificate id.
        id: String,
    },
    /// One certificate.
    Show {
        /// Certificate id or SHA-256 fingerprint.
        id: String,
    },
    /// A certificate and its issuers up to the root.
    Chain {
        /// Certificate id.
        id: String,
    },
    /// Searches the inventory.
    Search {
        /// Common name contains.
        #[arg(long)]
        cn: Option<String>,
        /// A subject alternative name contains.
        #[arg(long)]
        san: Option<String>,
        /// Status (repeatable): pending, active, expiring, expired, revoked, suspended.
        #[arg(long)]
        status: Vec<String>,
        /// Issued by this CA (certificate id).
        #[arg(long)]
        issuer: Option<String>,
        /// CAs only (or, with false, leaves only).
        #[arg(long)]
        ca: Option<bool>,
        /// Expiring before this time (RFC 3339).
        #[arg(long)]
        expires_before: Option<String>,
        /// Rows per page.
        #[arg(long)]
        limit: Option<u32>,
        /// The page after this cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Certificates in service expiring within N days.
    Expiring {
        /// Days ahead (1 to 30).
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// Writes a certificate (and for p12 its key) in a format.
    Export {
        /// Certificate id.
        id: String,
        /// The format.
        #[arg(long, value_enum, default_value = "pem")]
        format: ExportFormat,
        /// p12: the file holding the password (first line).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Where to write (default stdout; binary formats need a file or a pipe).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// `clm csr`.
#[derive(Debug, Subcommand)]
pub enum CsrCommand {
    /// Generates a key and a CSR for it, into files (no store needed).
    Create {
        /// The subject.
        #[command(flatten)]
        subject: SubjectArgs,
        /// Subject alternative name (repeatable), as for `cert issue`.
        #[arg(long = "san")]
        sans: Vec<String>,
        /// The key's algorithm.
        #[arg(long, default_value = "ECDSA-P256")]
        key_algorithm: String,
        /// Where the private key goes (PKCS#8 PEM, mode 0600).
        #[arg(long, value_name = "FILE")]
        key_out: PathBuf,
        /// Where the CSR goes (PEM).
        #[arg(long, value_name = "FILE")]
        csr_out: PathBuf,
    },
}

/// `clm key`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Exports a certificate's private key (PKCS#8; audited).
    Export {
        /// Certificate id.
        id: String,
        /// Where to write (mode 0600; default stdout).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Encrypt under the password in FILE (first line).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
}

/// `clm import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files or directories (read recursively): PEM, DER or bundles; a key
    /// beside a certificate (NAME.key for NAME.pem/.crt/.cer/.der) is imported with it.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The organization the certificates belong to (id).
    #[arg(long)]
    pub organization_id: Option<String>,
    /// Their owner (user id).
    #[arg(long)]
    pub owner: Option<String>,
    /// Certificates per import call.
    #[arg(long, default_value_t = 250)]
    pub chunk: usize,
}

/// `clm crl`.
#[derive(Debug, Subcommand)]
pub enum CrlCommand {
    /// Generates the next CRL of one CA, or of every CA.
    Generate {
        /// The CA (certificate id); every CA you can see when absent.
        #[arg(long)]
        issuer: Option<String>,
        /// A delta CRL.
        #[arg(long)]
        delta: bool,
        /// One partition.
        #[arg(long)]
        partition: Option<u32>,
        /// Hours until nextUpdate.
        #[arg(long)]
        next_update_hours: Option<u32>,
        /// Write the CRL's PEM to FILE (one CA only).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// `clm ocsp`.
#[derive(Debug, Subcommand)]
pub enum OcspCommand {
    /// Answers OCSP over HTTP (POST /ocsp, GET /ocsp/BASE64) until Ctrl-C or SIGTERM.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
}

/// `clm policy`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Creates or updates policies by code from a YAML or JSON file; shows the diff.
    Apply {
        /// One policy, or a list of them.
        file: PathBuf,
        /// Show what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Checks a request against a policy: every rule, passed or not.
    Check {
        /// The policy (code or id).
        #[arg(long)]
        policy: String,
        /// The CA that would sign (certificate id); default the policy's only
        /// allowed issuer.
        #[arg(long)]
        issuer: Option<String>,
        /// Common name.
        #[arg(long)]
        subject: Option<String>,
        /// Subject alternative name (repeatable).
        #[arg(long = "san")]
        sans: Vec<String>,
        /// Days of validity.
        #[arg(long, default_value_t = 90)]
        validity_days: u32,
        /// What it is for.
        #[arg(long, value_enum, default_value = "tls-server")]
        kind: Kind,
        /// The key's algorithm.
        #[arg(long, default_value = "ECDSA-P256")]
        key_algorithm: String,
    },
    /// Policies.
    List,
    /// One policy.
    Show {
        /// Code or id.
        policy: String,
    },
}

/// `clm workflow`.
#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// Creates workflows by code from a YAML or JSON file (unchanged ones are left).
    Apply {
        /// One workflow, or a list of them.
        file: PathBuf,
        /// Show what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Workflows.
    List,
    /// One workflow.
    Show {
        /// Code or id.
        workflow: String,
    },
}

/// `clm approvals`.
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Approvals waiting for you.
    List,
    /// Approves the current step of a workflow instance.
    Approve {
        /// Workflow instance id.
        id: String,
        /// A comment.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Rejects it.
    Reject {
        /// Workflow instance id.
        id: String,
        /// Why (required).
        #[arg(long)]
        comment: String,
    },
}

/// `clm user`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Creates a user (password asked twice, --password-stdin, or --no-password for SSO).
    Create {
        /// Username.
        #[arg(long)]
        username: String,
        /// Email.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        display_name: Option<String>,
        /// The organization (id).
        #[arg(long)]
        organization_id: Option<String>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        /// No password (SSO-only user).
        #[arg(long, conflicts_with = "password_stdin")]
        no_password: bool,
    },
    /// Users.
    List {
        /// Username, email or name contains.
        #[arg(long)]
        search: Option<String>,
        /// Include deleted users.
        #[arg(long)]
        include_deleted: bool,
    },
    /// One user.
    Show {
        /// Username or id.
        user: String,
    },
    /// Changes a user's status: active, inactive, suspended.
    SetStatus {
        /// Username or id.
        user: String,
        /// The status.
        status: String,
    },
    /// Soft-deletes a user and ends their sessions.
    Delete {
        /// Username or id.
        user: String,
    },
    /// Restores a deleted user.
    Restore {
        /// User id.
        user: String,
    },
    /// Lifts a lockout.
    Unlock {
        /// Username or id.
        user: String,
    },
    /// Resets a user's password (asked twice, or --password-stdin).
    SetPassword {
        /// Username or id.
        user: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Grants a role.
    Grant {
        /// Username or id.
        user: String,
        /// Role code or id.
        role: String,
    },
    /// Revokes a role.
    Revoke {
        /// Username or id.
        user: String,
        /// Role code or id.
        role: String,
    },
}

/// `clm role`.
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Roles.
    List,
    /// One role.
    Show {
        /// Code or id.
        role: String,
    },
    /// Creates a custom role.
    Create {
        /// Code.
        #[arg(long)]
        code: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Permissions as JSON: {"certificates": ["read"]}.
        #[arg(long)]
        permissions: String,
        /// Description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Soft-deletes a custom role.
    Delete {
        /// Code or id.
        role: String,
    },
}

/// `clm org`.
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Organizations.
    List,
    /// One organization.
    Show {
        /// Id.
        id: String,
    },
    /// Creates an organization.
    Create {
        /// Code.
        #[arg(long)]
        code: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Description.
        #[arg(long)]
        description: Option<String>,
        /// Parent organization (id).
        #[arg(long)]
        parent: Option<String>,
    },
    /// Sets the status: active, suspended, archived.
    SetStatus {
        /// Id.
        id: String,
        /// The status.
        status: String,
    },
    /// Adds a member.
    AddMember {
        /// Organization id.
        id: String,
        /// Username or id.
        user: String,
        /// member or admin.
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// Removes a member.
    RemoveMember {
        /// Organization id.
        id: String,
        /// Username or id.
        user: String,
    },
}

/// `clm apikey`.
#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Creates an API key; the key is written once to --out (0600) or shown once.
    Create {
        /// Name.
        #[arg(long)]
        name: String,
        /// Scopes as JSON ({"certificates": ["read"]}); default your permissions.
        #[arg(long)]
        scopes: Option<String>,
        /// Expiry (RFC 3339).
        #[arg(long)]
        expires_at: Option<String>,
        /// The organization (id).
        #[arg(long)]
        organization_id: Option<String>,
        /// Write the key to FILE (mode 0600) instead of showing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// API keys (never their secrets).
    List,
    /// Revokes an API key.
    Revoke {
        /// Id.
        id: String,
    },
}

/// Which audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Log {
    /// The secure database's trail (certificates, keys).
    Secure,
    /// The core database's trail (users, policies, workflows).
    Core,
}

impl Log {
    /// The library's name.
    pub fn name(self) -> &'static str {
        match self {
            Log::Secure => "secure",
            Log::Core => "core",
        }
    }
}

/// `clm audit`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verifies the hash chains (both unless --log), or against a checkpoint file.
    Verify {
        /// One trail.
        #[arg(long, value_enum)]
        log: Option<Log>,
        /// A checkpoint written by `clm audit checkpoint` (its trail only).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// The newest events, oldest first; --follow keeps printing new ones.
    Tail {
        /// The trail.
        #[arg(long, value_enum, default_value = "core")]
        log: Log,
        /// How many.
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: u32,
        /// Keep printing new events until Ctrl-C.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Only this event type.
        #[arg(long)]
        event_type: Option<String>,
    },
    /// Moves events older than a duration (180d) to a JSON-lines file.
    Archive {
        /// The trail.
        #[arg(long, value_enum)]
        log: Log,
        /// Age: days (180d, 180).
        #[arg(long)]
        older_than: String,
        /// The file (appended to).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// A signed checkpoint of a trail's head, to keep elsewhere.
    Checkpoint {
        /// The trail.
        #[arg(long, value_enum)]
        log: Log,
        /// Write it to FILE.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// `clm keys`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// The data keys and what each still seals.
    Status,
    /// Rotates the data key (Ctrl-C stops after a batch; run again to resume).
    RotateData {
        /// Records per batch.
        #[arg(long)]
        batch_size: Option<u32>,
    },
    /// Re-wraps the data keys under a new master key from FILE (created, 0600,
    /// when missing); then use that file as the master key file.
    RotateMaster {
        /// The new master key file.
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
}

/// `clm lifecycle`.
#[derive(Debug, Subcommand)]
pub enum LifecycleCommand {
    /// One pass as of --at (default now).
    Run {
        /// RFC 3339 time.
        #[arg(long)]
        at: Option<String>,
    },
}

/// `clm db`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Table and index sizes, dead rows, pools.
    Stats,
    /// ANALYZE (PRAGMA optimize), optional VACUUM, WAL checkpoint.
    Maintain {
        /// Also VACUUM.
        #[arg(long)]
        vacuum: bool,
        /// Skip ANALYZE.
        #[arg(long)]
        no_analyze: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
