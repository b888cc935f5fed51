/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/bit_field-0de00b2433728884.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/bit_field-0.10.3/src/lib.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/libbit_field-0de00b2433728884.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/bit_field-0.10.3/src/lib.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/libbit_field-0de00b2433728884.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/bit_field-0.10.3/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/bit_field-0.10.3/src/lib.rs:
