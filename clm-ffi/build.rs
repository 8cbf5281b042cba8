//! Gives the shared library its versioned soname (`libclm.so.MAJOR`, the
//! name `scripts/install` links `libclm.so` and `libclm.so.MAJOR.MINOR.PATCH`
//! to) and generates the C header into `$OUT_DIR/clm.h` with the crate's
//! version as `CLM_VERSION_*` macros, so Cargo.toml stays the one place the
//! version is written; `scripts/test-bindings` diffs that header against the
//! committed `include/clm.h`.

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let major = env("CARGO_PKG_VERSION_MAJOR");
    if target_os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libclm.so.{major}");
    }
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let crate_dir = env("CARGO_MANIFEST_DIR");
    let out_dir = env("OUT_DIR");
    let mut config = cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml"))
        .expect("clm-ffi/cbindgen.toml is readable");
    config.after_includes = Some(version_macros(
        &major,
        &env("CARGO_PKG_VERSION_MINOR"),
        &env("CARGO_PKG_VERSION_PATCH"),
        &env("CARGO_PKG_VERSION"),
    ));
    match cbindgen::generate_with_config(&crate_dir, config) {
        Ok(bindings) => {
            bindings.write_to_file(format!("{out_dir}/clm.h"));
        }
        Err(err) => panic!("cbindgen could not generate clm.h: {err}"),
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name}"))
}

/// The version the header was generated for. A program compares them with
/// `clm_version()`, the version of the library it runs against.
fn version_macros(major: &str, minor: &str, patch: &str, full: &str) -> String {
    format!(
        "\n/*\n * The version of libclm this header belongs to (clm-ffi's Cargo.toml).\n \
         * clm_version() returns the version of the library loaded at run time;\n \
         * the shared library's soname changes with the major version.\n */\n\
         #define CLM_VERSION_MAJOR {major}\n\
         #define CLM_VERSION_MINOR {minor}\n\
         #define CLM_VERSION_PATCH {patch}\n\
         #define CLM_VERSION_STRING \"{full}\""
    )
}
