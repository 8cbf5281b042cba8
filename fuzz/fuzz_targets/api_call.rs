//! `clm::api::call`, the one entry point of the Python, Node and C
//! bindings, driven structure-aware: each input is a short sequence of
//! calls, each an operation from the API description (`clm::api::describe`)
//! with arguments generated from that operation's JSON Schemas, against one
//! SQLite store opened for the whole run.
//!
//! The generator follows the schemas most of the time and departs from them
//! now and then (a wrong type, a missing or unknown field). Ids, tokens,
//! keys and PEM text seen in earlier replies are offered again, and actors
//! returned by `validate_session`, `authenticate_api_key` or
//! `actor_for_user` act in later calls, so calls reach past "not found" and
//! exercise authorization as a narrower actor.
//!
//! Checked: no call gets an Internal or Database error
//! (`clm_fuzz::check_error`), and every few hundred inputs both audit chains
//! still verify.
//!
//! Left out or pinned, so that the run stays inside its store: `close`
//! (every later call would only say Closed), `archive_audit_events`' file
//! (always a file in the store's directory) and `rotate_master_key`'s new
//! key (always a key given inline, never a file path). RSA-3072/4096 are not
//! offered (their key generation takes seconds; RSA-2048 is).
#![no_main]

use std::sync::{Mutex, OnceLock};

use arbitrary::{Result as ArbitraryResult, Unstructured};
use base64::Engine as _;
use clm::api::{Reply, call};
use clm::model::Permissions;
use clm::query::AuditLogKind;
use clm::{Actor, ErrorCode};
use clm_fuzz::{Store, check_error};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

/// Most calls in one input.
const MAX_CALLS: usize = 4;
/// Deepest schema nesting followed before answering null.
const MAX_DEPTH: u32 = 8;
/// Every this many inputs both audit chains are verified.
const CHAIN_CHECK_EVERY: u64 = 500;

struct Argument {
    name: String,
    schema: Value,
    required: bool,
}

struct Operation {
    name: String,
    arguments: Vec<Argument>,
}

/// Values seen in replies, offered to later calls (bounded rings).
#[derive(Default)]
struct Seen {
    ids: Vec<String>,
    texts: Vec<String>,
    actors: Vec<Actor>,
    next_id: usize,
    next_text: usize,
    next_actor: usize,
}

const MAX_IDS: usize = 256;
const MAX_TEXTS: usize = 64;
const MAX_ACTORS: usize = 16;

fn remember<T>(ring: &mut Vec<T>, next: &mut usize, limit: usize, value: T) {
    if ring.len() < limit {
        ring.push(value);
    } else {
        ring[*next % limit] = value;
        *next = next.wrapping_add(1);
    }
}

impl Seen {
    fn collect(&mut self, value: &Value) {
        match value {
            Value::String(text) => {
                if uuid::Uuid::parse_str(text).is_ok() {
                    if !self.ids.contains(text) {
                        remember(&mut self.ids, &mut self.next_id, MAX_IDS, text.clone());
                    }
                } else if (20..=16 * 1024).contains(&text.len()) && !self.texts.contains(text) {
                    remember(
                        &mut self.texts,
                        &mut self.next_text,
                        MAX_TEXTS,
                        text.clone(),
                    );
                }
            }
            Value::Array(items) => items.iter().for_each(|item| self.collect(item)),
            Value::Object(fields) => fields.values().for_each(|item| self.collect(item)),
            _ => {}
        }
    }
}

struct World {
    store: Store,
    operations: Vec<Operation>,
    types: Map<String, Value>,
    /// Strings worth offering anywhere: real PEM material, names, the
    /// permission catalog's resources and actions, approver references.
    dictionary: Vec<String>,
    seen: Mutex<Seen>,
    inputs: Mutex<u64>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let store = Store::open("api");
        let description = clm::api::describe();
        let types = description["types"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let operations = description["operations"]
            .as_array()
            .expect("the description lists operations")
            .iter()
            .filter(|operation| operation["name"] != "close")
            .map(|operation| Operation {
                name: operation["name"].as_str().unwrap_or_default().to_string(),
                arguments: operation["arguments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|argument| Argument {
                        name: argument["name"].as_str().unwrap_or_default().to_string(),
                        schema: argument["schema"].clone(),
                        required: argument["required"].as_bool().unwrap_or(false),
                    })
                    .collect(),
            })
            .collect();
        World {
            dictionary: dictionary(),
            store,
            operations,
            types,
            seen: Mutex::new(Seen::default()),
            inputs: Mutex::new(0),
        }
    })
}

/// Real material and words the schemas cannot tell: a certificate with its
/// key, a CSR, names and the permission catalog.
fn dictionary() -> Vec<String> {
    use clm::crypto::{
        CertificateTemplate, DistinguishedName, Issuer, KeyAlgorithm, KeyPair, PemLabel,
        build_certificate, build_csr, der_to_pem,
    };
    use clm::model::{CertificateKind, SubjectAlternativeName};
    let mut words: Vec<String> = [
        "example.com",
        "www.example.com",
        "*.example.com",
        "xn--bcher-kva.example",
        "10.0.0.0/8",
        "2001:db8::/32",
        "192.0.2.1",
        "ops@example.com",
        "https://example.com/crl",
        "CN=fuzz.example,O=Example,C=US",
        "CN=a\\,b+OU=c",
        "role:administrator",
        "role:auditor",
        "administrator",
        "auditor",
        "operator",
        "default",
        "member",
        "admin",
        "fuzz-user",
        "fuzz@example.com",
        "Correct-Horse-Battery-9",
        "000000",
        "",
        " ",
        "\u{0}",
        "'; DROP TABLE certificates; --",
        "%",
        "_",
        "..",
        "../../etc/passwd",
        "\u{202e}evil",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for (resource, actions) in Permissions::all().0 {
        words.extend(actions.iter().map(|action| format!("{resource}:{action}")));
        words.extend(actions);
        words.push(resource);
    }
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let subject = DistinguishedName::common_name("fuzz.example.com");
    let sans = [SubjectAlternativeName::Dns("fuzz.example.com".into())];
    let csr = build_csr(&subject, &sans, &key).expect("CSR");
    words.push(der_to_pem(PemLabel::CertificateRequest, &csr));
    let now = chrono::Utc::now();
    let mut template = CertificateTemplate::new(
        subject,
        CertificateKind::TlsServer,
        now - chrono::Duration::hours(1),
        now + chrono::Duration::days(90),
    );
    template.subject_alternative_names = sans.to_vec();
    let certificate = build_certificate(&template, &key.public_key_der(), Issuer::SelfSigned(&key))
        .expect("self-signed certificate");
    let certificate_pem = der_to_pem(PemLabel::Certificate, &certificate);
    words.push(base64::engine::general_purpose::STANDARD.encode(&certificate));
    words.push(key.to_pkcs8_pem().expose().to_string());
    words.push(format!("{certificate_pem}{}", key.to_pkcs8_pem().expose()));
    words.push(certificate_pem);
    words
}

const DATE_TIMES: [&str; 8] = [
    "2026-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "1950-01-01T00:00:00Z",
    "2049-12-31T23:59:59Z",
    "2050-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2026-06-30T12:00:00.123456+05:30",
    "0001-01-01T00:00:00Z",
];

const IPS: [&str; 5] = [
    "192.0.2.1",
    "::1",
    "2001:db8::1",
    "0.0.0.0",
    "255.255.255.255",
];

/// One of `items`, chosen by the input.
fn pick<'v, T>(u: &mut Unstructured<'_>, items: &'v [T]) -> ArbitraryResult<Option<&'v T>> {
    if items.is_empty() {
        return Ok(None);
    }
    Ok(items.get(u.choose_index(items.len())?))
}

/// Generates argument values from JSON Schemas.
struct Generator<'a, 'b> {
    u: &'a mut Unstructured<'b>,
    world: &'a World,
    seen: &'a Seen,
    /// The name of the field being generated (`email`, `username`, ...).
    hint: String,
}

impl Generator<'_, '_> {
    /// A value of any JSON type, ignoring the schema.
    fn wild(&mut self) -> ArbitraryResult<Value> {
        Ok(match self.u.int_in_range(0u8..=6)? {
            0 => Value::Null,
            1 => Value::Bool(self.u.arbitrary()?),
            2 => json!(self.u.arbitrary::<i64>()?),
            3 => json!(self.u.arbitrary::<f64>()?),
            4 => Value::String(self.u.arbitrary()?),
            5 => json!([]),
            _ => json!({}),
        })
    }

    fn value(&mut self, schema: &Value, depth: u32) -> ArbitraryResult<Value> {
        if depth > MAX_DEPTH {
            return Ok(Value::Null);
        }
        // Now and then, anything at all.
        if self.u.ratio(1u8, 40u8)? {
            return self.wild();
        }
        let Some(schema) = schema.as_object() else {
            return self.wild();
        };
        if let Some(Value::String(reference)) = schema.get("$ref") {
            let name = reference.trim_start_matches("#/types/");
            let world = self.world;
            return match world.types.get(name) {
                Some(target) => self.value(target, depth + 1),
                None => self.wild(),
            };
        }
        if let Some(constant) = schema.get("const") {
            return Ok(constant.clone());
        }
        if let Some(Value::Array(options)) = schema.get("enum") {
            return Ok(pick(self.u, options)?.cloned().unwrap_or(Value::Null));
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(options)) = schema.get(key)
                && let Some(option) = pick(self.u, options)?
            {
                return self.value(option, depth + 1);
            }
        }
        let kind = match schema.get("type") {
            Some(Value::String(kind)) => kind.clone(),
            Some(Value::Array(kinds)) => pick(self.u, kinds)?
                .and_then(Value::as_str)
                .unwrap_or("null")
                .to_string(),
            _ if schema.contains_key("properties") => "object".into(),
            _ => return self.wild(),
        };
        match kind.as_str() {
            "null" => Ok(Value::Null),
            "boolean" => Ok(Value::Bool(self.u.arbitrary()?)),
            "integer" => self.integer(schema),
            "number" => Ok(json!(self.u.arbitrary::<f64>()?)),
            "string" => self.string(schema),
            "array" => self.array(schema, depth),
            "object" => self.object(schema, depth),
            _ => self.wild(),
        }
    }

    fn integer(&mut self, schema: &Map<String, Value>) -> ArbitraryResult<Value> {
        let minimum = schema.get("minimum").and_then(Value::as_i64);
        let maximum = schema.get("maximum").and_then(Value::as_i64);
        let (low, high) = match schema.get("format").and_then(Value::as_str) {
            Some("uint8") => (0, i64::from(u8::MAX)),
            Some("uint16") => (0, i64::from(u16::MAX)),
            Some("uint32") => (0, i64::from(u32::MAX)),
            Some("int32") => (i64::from(i32::MIN), i64::from(i32::MAX)),
            Some("uint64") | Some("uint") => (0, i64::MAX),
            _ => (i64::MIN, i64::MAX),
        };
        let low = minimum.unwrap_or(low);
        let high = maximum.unwrap_or(high).max(low);
        let interesting = [
            low,
            high,
            low.saturating_add(1),
            high.saturating_sub(1),
            0,
            1,
            2,
            7,
            30,
            90,
            365,
            3650,
            -1,
        ];
        Ok(match self.u.int_in_range(0u8..=3)? {
            0 => json!(self.u.int_in_range(low..=high)?),
            1 => json!(
                self.u
                    .int_in_range(low.max(0).min(high)..=high.min(400).max(low))?
            ),
            _ => json!(*pick(self.u, &interesting)?.unwrap_or(&0)),
        })
    }

    fn string(&mut self, schema: &Map<String, Value>) -> ArbitraryResult<Value> {
        let format = schema.get("format").and_then(Value::as_str);
        if format == Some("uuid") {
            if !self.seen.ids.is_empty() && self.u.ratio(7u8, 8u8)? {
                let id = pick(self.u, &self.seen.ids)?.cloned().unwrap_or_default();
                return Ok(Value::String(id));
            }
            return Ok(Value::String(
                uuid::Uuid::from_u128(self.u.arbitrary()?).to_string(),
            ));
        }
        if format == Some("date-time") && self.u.ratio(7u8, 8u8)? {
            return Ok(json!(*pick(self.u, &DATE_TIMES)?.unwrap_or(&DATE_TIMES[0])));
        }
        if format == Some("ip") && self.u.ratio(7u8, 8u8)? {
            return Ok(json!(*pick(self.u, &IPS)?.unwrap_or(&IPS[0])));
        }
        if let Some(Value::Array(examples)) = schema.get("examples") {
            let offered: Vec<&Value> = examples
                .iter()
                .filter(|e| !matches!(e.as_str(), Some("RSA-3072" | "RSA-4096")))
                .collect();
            if self.u.ratio(7u8, 8u8)?
                && let Some(example) = pick(self.u, &offered)?
            {
                return Ok((*example).clone());
            }
        }
        if self.u.ratio(3u8, 4u8)?
            && let Some(text) = self.hinted()?
        {
            return Ok(Value::String(text));
        }
        Ok(Value::String(match self.u.int_in_range(0u8..=7)? {
            0 | 1 => self.u.arbitrary()?,
            2 | 3 if !self.seen.texts.is_empty() => {
                pick(self.u, &self.seen.texts)?.cloned().unwrap_or_default()
            }
            _ => {
                let word = pick(self.u, &self.world.dictionary)?
                    .cloned()
                    .unwrap_or_default();
                if self.u.ratio(1u8, 4u8)? {
                    // Unique-ish variants, so creations do not all collide.
                    format!("{word}-{}", self.u.int_in_range(0u16..=999)?)
                } else {
                    word
                }
            }
        }))
    }

    /// A value that fits the field's name, from a small set so later calls
    /// meet what earlier ones created (`user3` is created, then looked up).
    fn hinted(&mut self) -> ArbitraryResult<Option<String>> {
        let n = self.u.int_in_range(0u8..=9)?;
        let dictionary = |world: &World, needle: &str| {
            world
                .dictionary
                .iter()
                .filter(|w| w.contains(needle))
                .cloned()
                .collect::<Vec<String>>()
        };
        Ok(Some(match self.hint.as_str() {
            "username" | "login" => format!("user{n}"),
            "email" => format!("user{n}@example.com"),
            "password" | "new_password" | "current_password" => {
                ["Correct-Horse-Battery-9", "Another-Long-Passphrase-7"][usize::from(n % 2)].into()
            }
            "code" | "role_code" | "policy_code" | "org_code" | "workflow_code" => {
                format!("code-{n}")
            }
            "name" | "display_name" | "role_name" | "workflow_name" | "friendly_name" => {
                format!("Name {n}")
            }
            "common_name" | "value" => format!("host{n}.example.com"),
            "organization" | "organizational_unit" | "state" | "locality" => "Example".into(),
            "country" => "US".into(),
            "membership_role" => ["member", "admin", "owner"][usize::from(n % 3)].into(),
            "pem" | "trust_bundle_pem" => {
                let pems = dictionary(self.world, "BEGIN CERTIFICATE");
                pick(self.u, &pems)?.cloned().unwrap_or_default()
            }
            "csr" => {
                let pems = dictionary(self.world, "BEGIN CERTIFICATE REQUEST");
                pick(self.u, &pems)?.cloned().unwrap_or_default()
            }
            "private_key_pem" => {
                let pems = dictionary(self.world, "BEGIN PRIVATE KEY");
                pick(self.u, &pems)?.cloned().unwrap_or_default()
            }
            "token" | "key" | "cursor" | "certificate_id" => {
                let seen = self.seen;
                match pick(self.u, &seen.texts)? {
                    Some(text) => text.clone(),
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        }))
    }

    fn array(&mut self, schema: &Map<String, Value>, depth: u32) -> ArbitraryResult<Value> {
        if let Some(Value::Array(items)) = schema.get("prefixItems") {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                values.push(self.value(item, depth + 1)?);
            }
            return Ok(Value::Array(values));
        }
        let item = schema.get("items").cloned().unwrap_or(Value::Null);
        let count = self.u.int_in_range(0u8..=3)?;
        let mut values = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            values.push(self.value(&item, depth + 1)?);
        }
        Ok(Value::Array(values))
    }

    fn object(&mut self, schema: &Map<String, Value>, depth: u32) -> ArbitraryResult<Value> {
        let mut fields = Map::new();
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if let Some(Value::Object(properties)) = schema.get("properties") {
            for (name, property) in properties {
                let include = if required.contains(&name.as_str()) {
                    !self.u.ratio(1u8, 50u8)?
                } else {
                    self.u.arbitrary()?
                };
                if include {
                    let outer = std::mem::replace(&mut self.hint, name.clone());
                    let value = self.value(property, depth + 1);
                    self.hint = outer;
                    fields.insert(name.clone(), value?);
                }
            }
        }
        if let Some(additional @ Value::Object(_)) = schema.get("additionalProperties") {
            for _ in 0..self.u.int_in_range(0u8..=3)? {
                let key = pick(self.u, &self.world.dictionary)?
                    .cloned()
                    .unwrap_or_default();
                fields.insert(key, self.value(additional, depth + 1)?);
            }
        }
        if self.u.ratio(1u8, 60u8)? {
            fields.insert("unexpected".into(), self.wild()?);
        }
        Ok(Value::Object(fields))
    }
}

/// Keeps an operation's effects inside the store (see the module docs).
fn pin_arguments(world: &World, operation: &str, arguments: &mut Map<String, Value>, n: u8) {
    match operation {
        "archive_audit_events" => {
            let file = world.store.dir.join(format!("archive-{}.jsonl", n % 4));
            arguments.insert("file".into(), json!(file.to_string_lossy()));
        }
        "rotate_master_key" => {
            let key = base64::engine::general_purpose::STANDARD.encode([n; 32]);
            arguments.insert("new_master_key".into(), json!({ "master_key": key }));
        }
        _ => {}
    }
}

struct Call {
    operation: usize,
    arguments: Value,
    /// 0: the system actor, 1: none, 2..: an actor seen in a reply.
    actor: u8,
    pin: u8,
}

fn calls(u: &mut Unstructured<'_>, world: &World) -> ArbitraryResult<Vec<Call>> {
    let seen = world.seen.lock().unwrap_or_else(|p| p.into_inner());
    let count = 1 + usize::from(u.int_in_range(0u8..=(MAX_CALLS as u8 - 1))?);
    let mut calls = Vec::with_capacity(count);
    for _ in 0..count {
        let operation = u.choose_index(world.operations.len())?;
        let actor = u.arbitrary()?;
        let pin = u.arbitrary()?;
        let mut generator = Generator {
            u: &mut *u,
            world,
            seen: &*seen,
            hint: String::new(),
        };
        let mut arguments = Map::new();
        for argument in &world.operations[operation].arguments {
            let include = if argument.required {
                !generator.u.ratio(1u8, 50u8)?
            } else {
                generator.u.arbitrary()?
            };
            if include {
                generator.hint = argument.name.clone();
                let value = generator.value(&argument.schema, 0)?;
                arguments.insert(argument.name.clone(), value);
            }
        }
        if generator.u.ratio(1u8, 100u8)? {
            arguments.insert("unexpected".into(), generator.wild()?);
        }
        calls.push(Call {
            operation,
            arguments: Value::Object(arguments),
            actor,
            pin,
        });
    }
    Ok(calls)
}

fuzz_target!(|data: &[u8]| {
    let world = world();
    let mut u = Unstructured::new(data);
    let Ok(calls) = calls(&mut u, world) else {
        return;
    };
    let clm = &world.store.clm;
    let system = clm.system_actor();
    for mut call_input in calls {
        let operation = &world.operations[call_input.operation];
        if let Value::Object(arguments) = &mut call_input.arguments {
            pin_arguments(world, &operation.name, arguments, call_input.pin);
        }
        let actor = {
            let seen = world.seen.lock().unwrap_or_else(|p| p.into_inner());
            match call_input.actor {
                0..=127 => Some(system.clone()),
                128..=143 => None,
                n => (!seen.actors.is_empty())
                    .then(|| seen.actors[usize::from(n) % seen.actors.len()].clone())
                    .or_else(|| Some(system.clone())),
            }
        };
        let result = world.store.runtime.block_on(call(
            clm,
            actor.as_ref(),
            &operation.name,
            call_input.arguments,
            None,
        ));
        match result {
            Ok(reply) => {
                let mut seen = world.seen.lock().unwrap_or_else(|p| p.into_inner());
                match reply {
                    Reply::Value(value) => seen.collect(&value),
                    Reply::Actor(actor, value) => {
                        seen.collect(&value);
                        let Seen {
                            actors, next_actor, ..
                        } = &mut *seen;
                        remember(actors, next_actor, MAX_ACTORS, actor);
                    }
                }
            }
            Err(err) => check_error(&operation.name, &err),
        }
    }

    let checks_due = {
        let mut inputs = world.inputs.lock().unwrap_or_else(|p| p.into_inner());
        *inputs += 1;
        *inputs % CHAIN_CHECK_EVERY == 0
    };
    if checks_due {
        for log in [AuditLogKind::Secure, AuditLogKind::Core] {
            let report = world
                .store
                .runtime
                .block_on(clm.verify_audit_chain(&system, log))
                .unwrap_or_else(|err| {
                    assert_ne!(err.code(), ErrorCode::Internal);
                    panic!("verifying the {log:?} audit chain failed: {err}")
                });
            assert!(
                report.broken.is_none(),
                "{log:?} audit chain broken: {report:?}"
            );
        }
    }
});
