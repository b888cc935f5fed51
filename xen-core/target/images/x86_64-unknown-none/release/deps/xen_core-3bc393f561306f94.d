/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/xen_core-3bc393f561306f94.d: xen-core/src/lib.rs xen-core/src/acpi.rs xen-core/src/acpi/error.rs xen-core/src/acpi/madt.rs xen-core/src/acpi/mcfg.rs xen-core/src/bundle.rs xen-core/src/bundle/error.rs xen-core/src/bundle/fuzzing.rs xen-core/src/cmdline.rs xen-core/src/elf_loader.rs xen-core/src/elf_loader/error.rs xen-core/src/frame_allocator.rs xen-core/src/layout.rs xen-core/src/log_ring.rs xen-core/src/logger.rs xen-core/src/multiboot.rs xen-core/src/page_table.rs xen-core/src/time.rs xen-core/src/trap.rs xen-core/src/domain.rs xen-core/src/guest_console.rs xen-core/src/hypercall.rs xen-core/src/scheduler.rs xen-core/src/time_info.rs xen-core/src/wall_clock.rs xen-core/src/domctl.rs xen-core/src/event_channel.rs xen-core/src/event_channel/delivery.rs xen-core/src/grant_table.rs xen-core/src/grant_table/batch.rs xen-core/src/grant_table/copy.rs xen-core/src/grant_table/maptrack.rs xen-core/src/policy.rs xen-core/src/policy/label.rs xen-core/src/policy/rate_limit.rs xen-core/src/policy/server.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/libxen_core-3bc393f561306f94.rlib: xen-core/src/lib.rs xen-core/src/acpi.rs xen-core/src/acpi/error.rs xen-core/src/acpi/madt.rs xen-core/src/acpi/mcfg.rs xen-core/src/bundle.rs xen-core/src/bundle/error.rs xen-core/src/bundle/fuzzing.rs xen-core/src/cmdline.rs xen-core/src/elf_loader.rs xen-core/src/elf_loader/error.rs xen-core/src/frame_allocator.rs xen-core/src/layout.rs xen-core/src/log_ring.rs xen-core/src/logger.rs xen-core/src/multiboot.rs xen-core/src/page_table.rs xen-core/src/time.rs xen-core/src/trap.rs xen-core/src/domain.rs xen-core/src/guest_console.rs xen-core/src/hypercall.rs xen-core/src/scheduler.rs xen-core/src/time_info.rs xen-core/src/wall_clock.rs xen-core/src/domctl.rs xen-core/src/event_channel.rs xen-core/src/event_channel/delivery.rs xen-core/src/grant_table.rs xen-core/src/grant_table/batch.rs xen-core/src/grant_table/copy.rs xen-core/src/grant_table/maptrack.rs xen-core/src/policy.rs xen-core/src/policy/label.rs xen-core/src/policy/rate_limit.rs xen-core/src/policy/server.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/libxen_core-3bc393f561306f94.rmeta: xen-core/src/lib.rs xen-core/src/acpi.rs xen-core/src/acpi/error.rs xen-core/src/acpi/madt.rs xen-core/src/acpi/mcfg.rs xen-core/src/bundle.rs xen-core/src/bundle/error.rs xen-core/src/bundle/fuzzing.rs xen-core/src/cmdline.rs xen-core/src/elf_loader.rs xen-core/src/elf_loader/error.rs xen-core/src/frame_allocator.rs xen-core/src/layout.rs xen-core/src/log_ring.rs xen-core/src/logger.rs xen-core/src/multiboot.rs xen-core/src/page_table.rs xen-core/src/time.rs xen-core/src/trap.rs xen-core/src/domain.rs xen-core/src/guest_console.rs xen-core/src/hypercall.rs xen-core/src/scheduler.rs xen-core/src/time_info.rs xen-core/src/wall_clock.rs xen-core/src/domctl.rs xen-core/src/event_channel.rs xen-core/src/event_channel/delivery.rs xen-core/src/grant_table.rs xen-core/src/grant_table/batch.rs xen-core/src/grant_table/copy.rs xen-core/src/grant_table/maptrack.rs xen-core/src/policy.rs xen-core/src/policy/label.rs xen-core/src/policy/rate_limit.rs xen-core/src/policy/server.rs

xen-core/src/lib.rs:
xen-core/src/acpi.rs:
xen-core/src/acpi/error.rs:
xen-core/src/acpi/madt.rs:
xen-core/src/acpi/mcfg.rs:
xen-core/src/bundle.rs:
xen-core/src/bundle/error.rs:
xen-core/src/bundle/fuzzing.rs:
xen-core/src/cmdline.rs:
xen-core/src/elf_loader.rs:
xen-core/src/elf_loader/error.rs:
xen-core/src/frame_allocator.rs:
xen-core/src/layout.rs:
xen-core/src/log_ring.rs:
xen-core/src/logger.rs:
xen-core/src/multiboot.rs:
xen-core/src/page_table.rs:
xen-core/src/time.rs:
xen-core/src/trap.rs:
xen-core/src/domain.rs:
xen-core/src/guest_console.rs:
xen-core/src/hypercall.rs:
xen-core/src/scheduler.rs:
xen-core/src/time_info.rs:
xen-core/src/wall_clock.rs:
xen-core/src/domctl.rs:
xen-core/src/event_channel.rs:
xen-core/src/event_channel/delivery.rs:
xen-core/src/grant_table.rs:
xen-core/src/grant_table/batch.rs:
xen-core/src/grant_table/copy.rs:
xen-core/src/grant_table/maptrack.rs:
xen-core/src/policy.rs:
xen-core/src/policy/label.rs:
xen-core/src/policy/rate_limit.rs:
xen-core/src/policy/server.rs:
