//! `clm`, the operator's command line: every operation of the library from
//! a terminal, on clm-core's public API (`clm::api::call`, the entry point
//! the bindings use), with tables, JSON, YAML or PEM out, progress bars for
//! long operations and exit statuses mapped from `clm::ErrorCode`.

mod cli;
mod commands;
mod context;
mod error;
mod output;
mod progress;
mod settings;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::error::CliError;
use crate::output::Format;
use crate::settings::{FlagValues, Settings};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let status = if err.use_stderr() {
                error::EXIT_USAGE
            } else {
                0
            };
            let _ = err.print();
            std::process::exit(status);
        }
    };
    // Commands that print what the definition says need no settings.
    match &cli.command {
        Command::Completions { shell } => {
            commands::meta::completions(*shell);
            return;
        }
        Command::Man => {
            std::process::exit(match commands::meta::man() {
                Ok(()) => 0,
                Err(_) => 1,
            });
        }
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            std::process::exit(1);
        }
    };
    let json_errors = std::sync::atomic::AtomicBool::new(false);
    let color = output::color_enabled();
    let result = runtime.block_on(async {
        let flags = FlagValues {
            config: cli.global.config.clone(),
            data_dir: cli.global.data_dir.clone(),
            secure_url: cli.global.secure_url.clone(),
            core_url: cli.global.core_url.clone(),
            master_key_file: cli.global.master_key_file.clone(),
            api_key_file: cli.global.api_key_file.clone(),
            output: None,
        };
        let settings = Settings::resolve(&flags)?;
        let format = match cli.global.output {
            Some(format) => format,
            None => Format::parse(settings.get("output").unwrap_or("auto"))?,
        }
        .concrete();
        // Scripts reading JSON get errors as JSON too; a person watching
        // stderr gets words.
        let stderr_is_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        json_errors.store(
            format == Format::Json && !stderr_is_terminal,
            std::sync::atomic::Ordering::Relaxed,
        );
        if format == Format::Pem && !commands::has_pem_form(&cli.command) {
            return Err(error::invalid(
                "output",
                "this command has no PEM form: use table, json or yaml",
            ));
        }
        let mut context = Context::new(settings, cli.global.as_system, format, color);
        let result = commands::run(&mut context, cli.command).await;
        context.close().await;
        let rendered = result?;
        match (rendered, &cli.global.get) {
            (Some(rendered), Some(path)) if !rendered.silent => rendered.print_field(path)?,
            (Some(rendered), _) => rendered.print(format, color)?,
            (None, _) => {}
        }
        Ok::<(), CliError>(())
    });
    if let Err(err) = result {
        err.report(
            json_errors.load(std::sync::atomic::Ordering::Relaxed),
            color && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        );
        std::process::exit(err.exit_status());
    }
}
