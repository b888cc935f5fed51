/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/byteorder-bee13cbd0847b5c3.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/byteorder-1.5.0/src/lib.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/libbyteorder-bee13cbd0847b5c3.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/byteorder-1.5.0/src/lib.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/libbyteorder-bee13cbd0847b5c3.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/byteorder-1.5.0/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/byteorder-1.5.0/src/lib.rs:
