//! Links the bare-metal domain kernel with the guest runtime's linker script
//! (`frontends/runtime/guest.ld`). Host builds, where `main.rs` is a stub,
//! are left alone.

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    println!("cargo:rerun-if-changed=../../frontends/runtime/guest.ld");
    if target_os == "none" {
        println!("cargo:rustc-link-arg-bins=-T{dir}/../../frontends/runtime/guest.ld");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
        println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
    }
}
