/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/cfg_if-f91c6fe9e63dfad3.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/libcfg_if-f91c6fe9e63dfad3.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/libcfg_if-f91c6fe9e63dfad3.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs:
