//! `xen-core`'s safe logic: everything the hypervisor does that is not a
//! register, an instruction or a raw pointer. It builds for the host as well
//! as for `x86_64-unknown-none`, so `cargo test` exercises it directly; the
//! bare-metal binary (`main.rs` and its `arch` layer) is a thin shell on top.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod acpi;
pub mod bundle;
pub mod cmdline;
pub mod elf_loader;
pub mod frame_allocator;
pub mod layout;
pub mod log_ring;
pub mod logger;
pub mod multiboot;
pub mod operator;
pub mod page_table;
pub mod time;
pub mod trap;
pub mod domain;
pub mod guest_console;
pub mod hypercall;
pub mod scheduler;
pub mod time_info;
pub mod wall_clock;
pub mod domctl;
pub mod event_channel;
pub mod grant_table;
pub mod policy;
pub mod pci;
