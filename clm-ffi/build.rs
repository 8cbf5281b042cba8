//! Sets the shared library's soname to `libclm.so` (the name `scripts/dist`
//! installs it under) and generates the C header into `$OUT_DIR/clm.h`;
//! `scripts/test-bindings` diffs that against the committed `include/clm.h`.

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libclm.so");
    }
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let config = cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml"))
        .expect("clm-ffi/cbindgen.toml is readable");
    match cbindgen::generate_with_config(&crate_dir, config) {
        Ok(bindings) => {
            bindings.write_to_file(format!("{out_dir}/clm.h"));
        }
        Err(err) => panic!("cbindgen could not generate clm.h: {err}"),
    }
}
