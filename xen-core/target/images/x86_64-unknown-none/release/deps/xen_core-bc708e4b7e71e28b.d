/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/xen_core-bc708e4b7e71e28b.d: xen-core/src/main.rs xen-core/src/arch/mod.rs xen-core/src/arch/apic.rs xen-core/src/arch/boot.rs xen-core/src/arch/cmos.rs xen-core/src/arch/cpu.rs xen-core/src/arch/entry.rs xen-core/src/arch/fpu.rs xen-core/src/arch/machine.rs xen-core/src/arch/percpu.rs xen-core/src/arch/gdt.rs xen-core/src/arch/heap.rs xen-core/src/arch/paging.rs xen-core/src/arch/physical.rs xen-core/src/arch/pic.rs xen-core/src/arch/selftest.rs xen-core/src/arch/serial.rs xen-core/src/arch/shared.rs xen-core/src/arch/traps.rs xen-core/src/clock.rs xen-core/src/domains.rs xen-core/src/domains/channels.rs xen-core/src/start.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/xen_core-bc708e4b7e71e28b: xen-core/src/main.rs xen-core/src/arch/mod.rs xen-core/src/arch/apic.rs xen-core/src/arch/boot.rs xen-core/src/arch/cmos.rs xen-core/src/arch/cpu.rs xen-core/src/arch/entry.rs xen-core/src/arch/fpu.rs xen-core/src/arch/machine.rs xen-core/src/arch/percpu.rs xen-core/src/arch/gdt.rs xen-core/src/arch/heap.rs xen-core/src/arch/paging.rs xen-core/src/arch/physical.rs xen-core/src/arch/pic.rs xen-core/src/arch/selftest.rs xen-core/src/arch/serial.rs xen-core/src/arch/shared.rs xen-core/src/arch/traps.rs xen-core/src/clock.rs xen-core/src/domains.rs xen-core/src/domains/channels.rs xen-core/src/start.rs

xen-core/src/main.rs:
xen-core/src/arch/mod.rs:
xen-core/src/arch/apic.rs:
xen-core/src/arch/boot.rs:
xen-core/src/arch/cmos.rs:
xen-core/src/arch/cpu.rs:
xen-core/src/arch/entry.rs:
xen-core/src/arch/fpu.rs:
xen-core/src/arch/machine.rs:
xen-core/src/arch/percpu.rs:
xen-core/src/arch/gdt.rs:
xen-core/src/arch/heap.rs:
xen-core/src/arch/paging.rs:
xen-core/src/arch/physical.rs:
xen-core/src/arch/pic.rs:
xen-core/src/arch/selftest.rs:
xen-core/src/arch/serial.rs:
xen-core/src/arch/shared.rs:
xen-core/src/arch/traps.rs:
xen-core/src/clock.rs:
xen-core/src/domains.rs:
xen-core/src/domains/channels.rs:
xen-core/src/start.rs:

# env-dep:CARGO_PKG_VERSION=0.1.0
