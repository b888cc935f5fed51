//! Declares the `loom` cfg, so `RUSTFLAGS="--cfg loom"` is a known configuration
//! while the crate keeps the workspace's lint tables (`[lints] workspace = true`).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(loom)");
}
