//! `init`, `login`, `logout`, `whoami`, `config`, and the identity
//! operations: `user`, `role`, `org`, `apikey`.

use std::path::{Path, PathBuf};

use clm::api::{call, describe_actor};
use clm::crypto::SecretString;
use clm::{Clm, Error, MasterKeySource};
use serde_json::{Value, json};

use super::{json_argument, optional_uuid, role_id, string_at, user_id, uuid};
use crate::cli::{
    ApikeyCommand, ConfigCommand, InitArgs, LoginArgs, OrgCommand, RoleCommand, UserCommand,
};
use crate::context::{Context, new_password, password, write_private};
use crate::error::{CliError, CliResult, invalid};
use crate::output::Rendered;

const USER_COLUMNS: &[&str] = &[
    "id",
    "username",
    "email",
    "status",
    "mfa_enabled",
    "last_login_at",
];

/// What `init` created, to undo when a later step fails.
#[derive(Default)]
struct Created {
    data_dir: Option<PathBuf>,
    databases: Vec<(String, String)>,
}

/// `clm init`: the store, the master key file and the first administrator.
pub async fn init(ctx: &mut Context, args: InitArgs) -> CliResult<Rendered> {
    // Everything checkable is checked before anything is written.
    let Some(key_file) = ctx.settings.master_key_file() else {
        return Err(CliError::Clm(Error::Configuration(
            "init writes the master key to a file: give --master-key-file (or CLM_MASTER_KEY_FILE)"
                .into(),
        )));
    };
    let secret = new_password(args.password_stdin)?;
    let secret = SecretString::new(secret.to_string());
    clm::crypto::password::check_password_policy(&secret, &args.admin_username, &args.admin_email)?;
    let mut config = ctx.settings.clm_config()?;
    let key_exists = key_file.exists();
    if !key_exists
        && !ctx.settings.is_postgres()
        && let Some(dir) = ctx.settings.get("data_dir")
        && Path::new(dir).join("secure.db").exists()
    {
        return Err(CliError::Clm(Error::Configuration(format!(
            "a store exists in {dir} but its master key file {} does not: give the store's --master-key-file",
            key_file.display()
        ))));
    }

    let mut created = Created::default();
    if ctx.settings.is_postgres() {
        if !args.no_create_databases {
            for name in ["secure_url", "core_url"] {
                let url = ctx.settings.get(name).unwrap_or_default().to_string();
                if let Some(database) = create_database(&url, name).await? {
                    created.databases.push((url, database));
                }
            }
        }
    } else if let Some(dir) = ctx.settings.get("data_dir")
        && !Path::new(dir).exists()
    {
        created.data_dir = Some(PathBuf::from(dir));
    }

    // A new key goes to a temporary file first: it becomes the master key
    // file only when the store and the administrator exist.
    let pending_key = if key_exists {
        config.master_key = Some(MasterKeySource::File(key_file.clone()));
        None
    } else {
        let pending = key_file.with_extension(format!("pending-{}", std::process::id()));
        config.master_key = Some(MasterKeySource::FileOrCreate(pending.clone()));
        Some(pending)
    };

    let outcome = async {
        let clm = Clm::open(config).await?;
        let result = create_admin(&clm, &args, secret).await;
        match result {
            Ok(user) => Ok((clm, user)),
            Err(err) => {
                clm.close().await;
                Err(err)
            }
        }
    }
    .await;

    match outcome {
        Ok((clm, user)) => {
            if let Some(pending) = &pending_key {
                std::fs::rename(pending, &key_file).map_err(|err| {
                    invalid(
                        "master_key_file",
                        format!("cannot move the new key to {}: {err}", key_file.display()),
                    )
                })?;
            }
            let system = clm.system_actor();
            ctx.adopt(clm, Some(system));
            Ok(Rendered::record(json!({
                "store": ctx.settings.store_label(),
                "master_key_file": key_file.display().to_string(),
                "administrator": {
                    "id": user["id"],
                    "username": user["username"],
                    "email": user["email"],
                },
            }))
            .with_note(format!(
                "Keep {} safe and backed up: without it nothing sealed can be opened. Next: clm login -u {}",
                key_file.display(),
                args.admin_username
            )))
        }
        Err(err) => {
            if let Some(pending) = &pending_key {
                let _ = std::fs::remove_file(pending);
            }
            if let Some(dir) = &created.data_dir {
                let _ = std::fs::remove_dir_all(dir);
            }
            for (url, database) in &created.databases {
                drop_database(url, database).await;
            }
            Err(err.into())
        }
    }
}

async fn create_admin(clm: &Clm, args: &InitArgs, secret: SecretString) -> clm::Result<Value> {
    let system = clm.system_actor();
    let existing = call(
        clm,
        Some(&system),
        "list_users",
        json!({"page": {"limit": 1}}),
        None,
    )
    .await?
    .into_value();
    if existing["items"]
        .as_array()
        .is_some_and(|items| !items.is_empty())
    {
        return Err(Error::AlreadyExists {
            entity: "store".into(),
            field: "administrator (the store is already initialized; use clm login)".into(),
            source: None,
        });
    }
    let user = call(
        clm,
        Some(&system),
        "create_user",
        json!({"new": {
            "username": args.admin_username,
            "email": args.admin_email,
            "display_name": args.display_name,
            "password": secret.expose(),
        }}),
        None,
    )
    .await?
    .into_value();
    let role = call(
        clm,
        Some(&system),
        "get_role_by_code",
        json!({"code": "ADMIN"}),
        None,
    )
    .await?
    .into_value();
    call(
        clm,
        Some(&system),
        "assign_role",
        json!({"user_id": user["id"], "role_id": role["id"]}),
        None,
    )
    .await?;
    Ok(user)
}

/// Creates the database of a PostgreSQL URL when missing; its name when created.
async fn create_database(url: &str, field: &str) -> CliResult<Option<String>> {
    use sqlx::ConnectOptions;
    use std::str::FromStr;
    let options = sqlx::postgres::PgConnectOptions::from_str(url)
        .map_err(|err| invalid(field, format!("is not a PostgreSQL URL: {err}")))?;
    let Some(name) = options.get_database().map(str::to_string) else {
        return Err(invalid(field, "names no database"));
    };
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(invalid(
            field,
            format!("database name {name:?}: only letters, digits, _ and - are created by init"),
        ));
    }
    let mut admin = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .map_err(|err| {
            CliError::Clm(Error::database(format!(
                "cannot connect to PostgreSQL to create {name}: {err}"
            )))
        })?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut admin)
        .await
        .map_err(|err| CliError::Clm(Error::database(format!("cannot look up {name}: {err}"))))?;
    if exists.is_some() {
        return Ok(None);
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .map_err(|err| CliError::Clm(Error::database(format!("cannot create {name}: {err}"))))?;
    Ok(Some(name))
}

async fn drop_database(url: &str, name: &str) {
    use sqlx::ConnectOptions;
    use std::str::FromStr;
    let Ok(options) = sqlx::postgres::PgConnectOptions::from_str(url) else {
        return;
    };
    if let Ok(mut admin) = options.database("postgres").connect().await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
    }
}

/// `clm login`.
pub async fn login(ctx: &mut Context, args: LoginArgs) -> CliResult<Rendered> {
    let secret = password(args.password_stdin)?;
    let result = ctx
        .call_anonymous(
            "authenticate",
            json!({
                "login": args.username,
                "password": *secret,
                "otp": args.otp,
                "user_agent": concat!("clm-cli/", env!("CARGO_PKG_VERSION")),
            }),
        )
        .await?;
    let token = zeroize::Zeroizing::new(string_at(&result, "token")?);
    let username = string_at(&result, "user.username")?;
    ctx.save_session(&token, &username)?;
    Ok(Rendered::record(json!({
        "username": username,
        "session_id": result["session"]["id"],
        "expires_at": result["session"]["expires_at"],
        "token_file": ctx.session_path().display().to_string(),
    })))
}

/// `clm logout`.
pub async fn logout(ctx: &mut Context) -> CliResult<Rendered> {
    let path = ctx.session_path();
    let Some(token) = ctx.saved_token() else {
        return Ok(Rendered::record(
            json!({"logged_out": false, "reason": "no session kept"}),
        ));
    };
    // A session already expired or revoked is as good as ended.
    match ctx.call_anonymous("logout", json!({"token": *token})).await {
        Ok(_) | Err(CliError::Clm(Error::Authentication(_))) => {}
        Err(err) => return Err(err),
    }
    std::fs::remove_file(&path).map_err(|err| {
        invalid(
            "session",
            format!("cannot delete {}: {err}", path.display()),
        )
    })?;
    Ok(Rendered::record(json!({"logged_out": true})))
}

/// `clm whoami`.
pub async fn whoami(ctx: &mut Context) -> CliResult<Rendered> {
    let actor = ctx.actor().await?;
    let mut description = describe_actor(&actor);
    if let Some(id) = description["user_id"].as_str().map(str::to_string) {
        let user = ctx.call("get_user", json!({"id": id})).await?;
        description["username"] = user["username"].clone();
    }
    Ok(Rendered::record(description))
}

/// `clm config show`.
pub fn config(ctx: &mut Context, command: ConfigCommand) -> CliResult<Rendered> {
    match command {
        ConfigCommand::Show => {
            let rows = ctx.settings.rows();
            let file = ctx
                .settings
                .config_file
                .as_ref()
                .map(|path| format!("clm.toml: {}", path.display()))
                .unwrap_or_else(|| "clm.toml: none".into());
            Ok(Rendered::table(
                Value::Array(rows),
                &["setting", "value", "source", "variable"],
            )
            .with_note(file))
        }
    }
}

/// `clm user ...`.
pub async fn user(ctx: &mut Context, command: UserCommand) -> CliResult<Rendered> {
    Ok(match command {
        UserCommand::Create {
            username,
            email,
            display_name,
            organization_id,
            password_stdin,
            no_password,
        } => {
            let organization_id = optional_uuid(&organization_id, "organization_id")?;
            let secret = if no_password {
                None
            } else {
                Some(new_password(password_stdin)?)
            };
            let user = ctx
                .call(
                    "create_user",
                    json!({"new": {
                        "username": username,
                        "email": email,
                        "display_name": display_name,
                        "organization_id": organization_id,
                        "password": secret.as_deref().map(String::as_str),
                    }}),
                )
                .await?;
            Rendered::record(user)
        }
        UserCommand::List {
            search,
            include_deleted,
        } => {
            let page = ctx
                .call(
                    "list_users",
                    json!({"filter": {"search": search}, "page": {"include_deleted": include_deleted}}),
                )
                .await?;
            Rendered::page(page, USER_COLUMNS)
        }
        UserCommand::Show { user } => {
            let id = user_id(ctx, &user).await?;
            Rendered::record(ctx.call("get_user", json!({"id": id})).await?)
        }
        UserCommand::SetStatus { user, status } => {
            let id = user_id(ctx, &user).await?;
            Rendered::record(
                ctx.call(
                    "update_user",
                    json!({"id": id, "update": {"status": status}}),
                )
                .await?,
            )
        }
        UserCommand::Delete { user } => {
            let id = user_id(ctx, &user).await?;
            ctx.call("delete_user", json!({"id": id})).await?;
            Rendered::record(json!({"deleted": id}))
        }
        UserCommand::Restore { user } => {
            let id = uuid(&user, "user")?;
            Rendered::record(ctx.call("restore_user", json!({"id": id})).await?)
        }
        UserCommand::Unlock { user } => {
            let id = user_id(ctx, &user).await?;
            Rendered::record(ctx.call("unlock_user", json!({"id": id})).await?)
        }
        UserCommand::SetPassword {
            user,
            password_stdin,
        } => {
            let id = user_id(ctx, &user).await?;
            let secret = new_password(password_stdin)?;
            ctx.call("set_password", json!({"id": id, "new_password": *secret}))
                .await?;
            Rendered::record(json!({"password_set": id}))
        }
        UserCommand::Grant { user, role } => {
            let user = user_id(ctx, &user).await?;
            let role = role_id(ctx, &role).await?;
            Rendered::record(
                ctx.call("assign_role", json!({"user_id": user, "role_id": role}))
                    .await?,
            )
        }
        UserCommand::Revoke { user, role } => {
            let user = user_id(ctx, &user).await?;
            let role = role_id(ctx, &role).await?;
            ctx.call("revoke_role", json!({"user_id": user, "role_id": role}))
                .await?;
            Rendered::record(json!({"revoked": {"user_id": user, "role_id": role}}))
        }
    })
}

/// `clm role ...`.
pub async fn role(ctx: &mut Context, command: RoleCommand) -> CliResult<Rendered> {
    const COLUMNS: &[&str] = &[
        "id",
        "role_code",
        "role_name",
        "is_builtin",
        "organization_id",
    ];
    Ok(match command {
        RoleCommand::List => Rendered::page(ctx.call("list_roles", Value::Null).await?, COLUMNS),
        RoleCommand::Show { role } => {
            let id = role_id(ctx, &role).await?;
            Rendered::record(ctx.call("get_role", json!({"id": id})).await?)
        }
        RoleCommand::Create {
            code,
            name,
            permissions,
            description,
        } => {
            let permissions = json_argument(&permissions, "permissions")?;
            Rendered::record(
                ctx.call(
                    "create_role",
                    json!({"new": {
                        "role_code": code,
                        "role_name": name,
                        "permissions": permissions,
                        "description": description,
                    }}),
                )
                .await?,
            )
        }
        RoleCommand::Delete { role } => {
            let id = role_id(ctx, &role).await?;
            ctx.call("delete_role", json!({"id": id})).await?;
            Rendered::record(json!({"deleted": id}))
        }
    })
}

/// `clm org ...`.
pub async fn org(ctx: &mut Context, command: OrgCommand) -> CliResult<Rendered> {
    const COLUMNS: &[&str] = &["id", "org_code", "name", "status", "parent_organization_id"];
    Ok(match command {
        OrgCommand::List => {
            Rendered::page(ctx.call("list_organizations", Value::Null).await?, COLUMNS)
        }
        OrgCommand::Show { id } => {
            let id = uuid(&id, "id")?;
            Rendered::record(ctx.call("get_organization", json!({"id": id})).await?)
        }
        OrgCommand::Create {
            code,
            name,
            description,
            parent,
        } => {
            let parent = optional_uuid(&parent, "parent")?;
            Rendered::record(
                ctx.call(
                    "create_organization",
                    json!({"new": {
                        "org_code": code,
                        "name": name,
                        "description": description,
                        "parent_organization_id": parent,
                    }}),
                )
                .await?,
            )
        }
        OrgCommand::SetStatus { id, status } => {
            let id = uuid(&id, "id")?;
            Rendered::record(
                ctx.call(
                    "set_organization_status",
                    json!({"id": id, "status": status}),
                )
                .await?,
            )
        }
        OrgCommand::AddMember { id, user, role } => {
            let id = uuid(&id, "id")?;
            let user = user_id(ctx, &user).await?;
            ctx.call(
                "add_organization_member",
                json!({"organization_id": id, "user_id": user, "membership_role": role}),
            )
            .await?;
            Rendered::record(
                json!({"organization_id": id, "user_id": user, "membership_role": role}),
            )
        }
        OrgCommand::RemoveMember { id, user } => {
            let id = uuid(&id, "id")?;
            let user = user_id(ctx, &user).await?;
            ctx.call(
                "remove_organization_member",
                json!({"organization_id": id, "user_id": user}),
            )
            .await?;
            Rendered::record(json!({"removed": {"organization_id": id, "user_id": user}}))
        }
    })
}

/// `clm apikey ...`.
pub async fn apikey(ctx: &mut Context, command: ApikeyCommand) -> CliResult<Rendered> {
    const COLUMNS: &[&str] = &[
        "id",
        "key_id",
        "name",
        "user_id",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ];
    Ok(match command {
        ApikeyCommand::Create {
            name,
            scopes,
            expires_at,
            organization_id,
            out,
        } => {
            let scopes = scopes
                .as_deref()
                .map(|text| json_argument(text, "scopes"))
                .transpose()?;
            let organization_id = optional_uuid(&organization_id, "organization_id")?;
            if let Some(path) = &out
                && path.is_dir()
            {
                return Err(invalid("out", format!("{} is a directory", path.display())));
            }
            let created = ctx
                .call(
                    "create_api_key",
                    json!({"new": {
                        "name": name,
                        "scopes": scopes,
                        "expires_at": expires_at,
                        "organization_id": organization_id,
                    }}),
                )
                .await?;
            let key = zeroize::Zeroizing::new(string_at(&created, "key")?);
            let mut shown = json!({"api_key": created["api_key"]});
            match &out {
                Some(path) => {
                    write_private(path, format!("{}\n", *key).as_bytes(), "out")?;
                    shown["key_file"] = Value::String(path.display().to_string());
                }
                // Shown this once: there is no other way to get it.
                None => shown["key"] = Value::String(key.to_string()),
            }
            Rendered::record(shown)
        }
        ApikeyCommand::List => {
            Rendered::page(ctx.call("list_api_keys", Value::Null).await?, COLUMNS)
        }
        ApikeyCommand::Revoke { id } => {
            let id = uuid(&id, "id")?;
            ctx.call("revoke_api_key", json!({"id": id})).await?;
            Rendered::record(json!({"revoked": id}))
        }
    })
}
