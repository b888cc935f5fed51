//! The arch layer: everything that touches registers, instructions, device
//! ports or raw memory. It is the only place in the hypervisor binary with
//! `unsafe`; each block says why it is sound.

pub mod apic;
pub mod boot;
pub mod cmos;
pub mod cpu;
pub mod ecam;
pub mod entry;
pub mod fpu;
pub mod machine;
pub mod percpu;
pub mod gdt;
pub mod heap;
pub mod paging;
pub mod physical;
pub mod pic;
pub mod selftest;
pub mod serial;
pub mod shared;
pub mod traps;
