/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/volatile-48f9edcad475ba29.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/volatile-0.4.6/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/volatile-0.4.6/src/access.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/libvolatile-48f9edcad475ba29.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/volatile-0.4.6/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/volatile-0.4.6/src/access.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/libvolatile-48f9edcad475ba29.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/volatile-0.4.6/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/volatile-0.4.6/src/access.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/volatile-0.4.6/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/volatile-0.4.6/src/access.rs:
