/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/stable_deref_trait-d4f7f685ce37279d.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/stable_deref_trait-1.2.1/src/lib.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/libstable_deref_trait-d4f7f685ce37279d.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/stable_deref_trait-1.2.1/src/lib.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/libstable_deref_trait-d4f7f685ce37279d.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/stable_deref_trait-1.2.1/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/stable_deref_trait-1.2.1/src/lib.rs:
