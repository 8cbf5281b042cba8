//! Completions and the man page, generated from the command definition.

use clap::CommandFactory;

use crate::cli::Cli;

/// Prints the completion script of `shell`.
pub fn completions(shell: clap_complete::Shell) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "clm", &mut std::io::stdout());
}

/// Prints the man page (roff).
pub fn man() -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())
}
