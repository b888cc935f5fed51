/work/main/xen-core/target/images/release/deps/const_fn-47bdbcfc0395bf04.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/error.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/ast.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/iter.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/to_tokens.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/utils.rs /work/main/xen-core/target/images/release/build/const_fn-16f82a09b2333704/out/version

/work/main/xen-core/target/images/release/deps/libconst_fn-47bdbcfc0395bf04.so: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/error.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/ast.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/iter.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/to_tokens.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/utils.rs /work/main/xen-core/target/images/release/build/const_fn-16f82a09b2333704/out/version

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/error.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/ast.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/iter.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/to_tokens.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/utils.rs:
/work/main/xen-core/target/images/release/build/const_fn-16f82a09b2333704/out/version:

# env-dep:OUT_DIR=/work/main/xen-core/target/images/release/build/const_fn-16f82a09b2333704/out
