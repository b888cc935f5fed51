/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/crypto_common-d0b66f99d92d76a7.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/crypto-common-0.1.7/src/lib.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/libcrypto_common-d0b66f99d92d76a7.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/crypto-common-0.1.7/src/lib.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/libcrypto_common-d0b66f99d92d76a7.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/crypto-common-0.1.7/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/crypto-common-0.1.7/src/lib.rs:
