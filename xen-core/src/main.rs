//! The hypervisor binary. On `x86_64-unknown-none` this is the image QEMU
//! boots; on the host it is a stub, so `cargo test` over the workspace stays
//! meaningful (the logic lives in the `xen_core` library and is tested there).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_op_in_unsafe_fn)]
// Unsafe code lives in the arch layer only (allowed on `mod arch` below).
#![deny(unsafe_code)]
// reason: a binary's modules are private to it; `pub` marks what the arch
// layer offers the rest of the binary, which this lint cannot see.
#![allow(unreachable_pub)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
#[allow(unsafe_code)] // reason: the arch layer is the one place registers, instructions and raw memory are touched
mod arch;
#[cfg(target_os = "none")]
mod clock;
#[cfg(target_os = "none")]
mod devices;
#[cfg(target_os = "none")]
mod domains;
#[cfg(target_os = "none")]
mod operator_channel;
#[cfg(target_os = "none")]
mod start;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("xen-core is a bare-metal image: build it with `make` (target x86_64-unknown-none) and boot it with `make run`.");
    std::process::exit(2);
}
