//! A small OCSP responder over HTTP/1.1 (RFC 6960 appendix A): `POST
//! /ocsp` with `Content-Type: application/ocsp-request`, or `GET
//! /ocsp/<url-encoded base64 of the request>`; answers carry
//! `Content-Type: application/ocsp-response`. The URL scheme is the one clm
//! derives for certificates (`<public base URL>/ocsp`). It opens clm like
//! the quickstart: embedded SQLite in DATA_DIR, or PostgreSQL when
//! CLM_SECURE_DATABASE_URL / CLM_CORE_DATABASE_URL are set, with
//! CLM_MASTER_KEY(_FILE).
//!
//!     cargo run --example ocsp_server [-- DATA_DIR [127.0.0.1:8080]]
//!
//! Only the standard library speaks HTTP here (a thread per connection, at
//! most [`MAX_CONNECTIONS`] at once, one request each); a host mounts
//! `Clm::ocsp_respond` in its own server the same way.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use clm::crypto::ocsp::MAX_OCSP_REQUEST_LEN;
use clm::{Clm, ClmConfig, MasterKeySource};

/// Connections served at once; more get 503.
pub const MAX_CONNECTIONS: usize = 64;
/// Longest request line plus headers read.
const MAX_HEAD: usize = 16 * 1024;

#[allow(dead_code)] // The tests include this file for `serve` only.
fn main() {
    let mut args = std::env::args().skip(1);
    let data_dir = args.next().unwrap_or_else(|| "./clm-data".to_string());
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ocsp_server: no runtime: {err}");
            std::process::exit(1);
        }
    };
    let clm = match runtime.block_on(open(&data_dir)) {
        Ok(clm) => clm,
        Err(err) => {
            eprintln!("ocsp_server: cannot open clm: {err} [{}]", err.code());
            std::process::exit(1);
        }
    };
    let listener = match TcpListener::bind(&listen) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("ocsp_server: cannot listen on {listen}: {err}");
            std::process::exit(1);
        }
    };
    println!("OCSP responder on http://{listen}/ocsp");
    serve(listener, clm, runtime.handle().clone());
}

/// Opens clm the way examples/quickstart.rs does.
#[allow(dead_code)]
async fn open(data_dir: &str) -> clm::Result<Clm> {
    let postgres = ["CLM_SECURE_DATABASE_URL", "CLM_CORE_DATABASE_URL"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
    let mut config = if postgres {
        ClmConfig::from_env()?
    } else {
        ClmConfig::sqlite(data_dir)
    };
    if config.master_key.is_none() {
        let key_file = std::path::Path::new(data_dir).join("master.key");
        config.master_key = Some(MasterKeySource::FileOrCreate(key_file));
    }
    Clm::open(config).await
}

/// Accepts connections until the listener fails, answering each on a
/// thread of its own with `clm` run on `runtime`.
pub fn serve(listener: TcpListener, clm: Clm, runtime: tokio::runtime::Handle) {
    serve_until(listener, clm, runtime, &AtomicBool::new(false));
}

/// How often [`serve_until`] looks at its stop flag while no one connects.
const ACCEPT_POLL: Duration = Duration::from_millis(50);
/// How long [`serve_until`] lets requests in flight finish after a stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// [`serve`] until `stop` is set (`clm ocsp serve` sets it on Ctrl-C or
/// SIGTERM): then it stops accepting, lets the requests in flight finish
/// (at most [`DRAIN_TIMEOUT`]) and returns.
pub fn serve_until(
    listener: TcpListener,
    clm: Clm,
    runtime: tokio::runtime::Handle,
    stop: &AtomicBool,
) {
    let active = Arc::new(AtomicUsize::new(0));
    // Non-blocking accepts let the loop see the stop flag.
    if let Err(err) = listener.set_nonblocking(true) {
        eprintln!("ocsp_server: cannot poll the listener: {err}");
        return;
    }
    while !stop.load(Ordering::SeqCst) {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
            Err(_) => continue,
        };
        let _ = stream.set_nonblocking(false);
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = reply(
                &mut stream,
                "503 Service Unavailable",
                "text/plain",
                b"busy\n",
            );
            continue;
        }
        let (clm, runtime, active) = (clm.clone(), runtime.clone(), active.clone());
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
            if let Err(err) = handle(&mut stream, &clm, &runtime) {
                eprintln!("ocsp_server: {err}");
            }
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
    let deadline = std::time::Instant::now() + DRAIN_TIMEOUT;
    while active.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(ACCEPT_POLL);
    }
}

/// One HTTP exchange.
fn handle(
    stream: &mut TcpStream,
    clm: &Clm,
    runtime: &tokio::runtime::Handle,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut head = Vec::new();
    let mut content_length: Option<usize> = None;
    let mut request_line = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        head.extend_from_slice(line.as_bytes());
        if head.len() > MAX_HEAD {
            return reply(
                stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"",
            );
        }
        let line = line.trim_end();
        if request_line.is_empty() {
            request_line = line.to_string();
            continue;
        }
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().ok();
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let request = match method {
        "POST" => {
            let Some(length) = content_length else {
                return reply(stream, "411 Length Required", "text/plain", b"");
            };
            if length > MAX_OCSP_REQUEST_LEN {
                return reply(stream, "413 Content Too Large", "text/plain", b"");
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            body
        }
        "GET" => {
            // Everything after the responder's path is the request: base64
            // may itself contain '/'.
            let Some((_, encoded)) = target.split_once("/ocsp/") else {
                return reply(stream, "404 Not Found", "text/plain", b"");
            };
            // Not base64: the responder answers malformedRequest itself.
            percent_decode(encoded)
                .and_then(|text| base64_decode(&text))
                .unwrap_or_default()
        }
        _ => return reply(stream, "405 Method Not Allowed", "text/plain", b""),
    };
    let response = runtime.block_on(clm.ocsp_respond(&request));
    reply(stream, "200 OK", "application/ocsp-response", &response)
}

fn reply(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(index + 1..index + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                index += 3;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}
