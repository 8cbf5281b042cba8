//! `clm ocsp serve`: the HTTP responder of examples/ocsp_server.rs (one
//! implementation for both), as a long-running command that stops
//! gracefully on Ctrl-C or SIGTERM.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::cli::OcspCommand;
use crate::context::{Context, catch_interrupts, interrupted};
use crate::error::{CliError, CliResult, invalid};

#[allow(dead_code)] // the example's own `main`, `open` and `serve` are not used here
#[path = "../../../examples/ocsp_server.rs"]
mod http;

/// Serves until interrupted.
pub async fn run(ctx: &mut Context, command: OcspCommand) -> CliResult<()> {
    let OcspCommand::Serve { listen } = command;
    let clm = ctx.clm().await?;
    let listener = std::net::TcpListener::bind(&listen)
        .map_err(|err| invalid("listen", format!("cannot listen on {listen}: {err}")))?;
    let address = listener
        .local_addr()
        .map_err(|err| invalid("listen", format!("no local address: {err}")))?;
    catch_interrupts();
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Handle::current();
    let server = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || http::serve_until(listener, clm, runtime, &stop))
    };
    // Scripts wait for this line before sending requests.
    println!("OCSP responder on http://{address}/ocsp");
    eprintln!("Ctrl-C or SIGTERM stops it");
    while !interrupted() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    server.await.map_err(|err| {
        CliError::Clm(clm::Error::Internal(format!(
            "the server task failed: {err}"
        )))
    })?;
    eprintln!("OCSP responder stopped");
    Ok(())
}
