/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/xen_abi-dfe169e680455c52.d: xen-core/abi/src/lib.rs xen-core/abi/src/bundle.rs xen-core/abi/src/domctl.rs xen-core/abi/src/event_channel.rs xen-core/abi/src/grant_table.rs xen-core/abi/src/errno.rs xen-core/abi/src/hypercall.rs xen-core/abi/src/layout.rs xen-core/abi/src/policy.rs xen-core/abi/src/sched.rs xen-core/abi/src/shared_info.rs xen-core/abi/src/timer.rs xen-core/abi/src/start_info.rs xen-core/abi/src/bytes.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/libxen_abi-dfe169e680455c52.rlib: xen-core/abi/src/lib.rs xen-core/abi/src/bundle.rs xen-core/abi/src/domctl.rs xen-core/abi/src/event_channel.rs xen-core/abi/src/grant_table.rs xen-core/abi/src/errno.rs xen-core/abi/src/hypercall.rs xen-core/abi/src/layout.rs xen-core/abi/src/policy.rs xen-core/abi/src/sched.rs xen-core/abi/src/shared_info.rs xen-core/abi/src/timer.rs xen-core/abi/src/start_info.rs xen-core/abi/src/bytes.rs

/work/main/xen-core/target/images/x86_64-unknown-none/release/deps/libxen_abi-dfe169e680455c52.rmeta: xen-core/abi/src/lib.rs xen-core/abi/src/bundle.rs xen-core/abi/src/domctl.rs xen-core/abi/src/event_channel.rs xen-core/abi/src/grant_table.rs xen-core/abi/src/errno.rs xen-core/abi/src/hypercall.rs xen-core/abi/src/layout.rs xen-core/abi/src/policy.rs xen-core/abi/src/sched.rs xen-core/abi/src/shared_info.rs xen-core/abi/src/timer.rs xen-core/abi/src/start_info.rs xen-core/abi/src/bytes.rs

xen-core/abi/src/lib.rs:
xen-core/abi/src/bundle.rs:
xen-core/abi/src/domctl.rs:
xen-core/abi/src/event_channel.rs:
xen-core/abi/src/grant_table.rs:
xen-core/abi/src/errno.rs:
xen-core/abi/src/hypercall.rs:
xen-core/abi/src/layout.rs:
xen-core/abi/src/policy.rs:
xen-core/abi/src/sched.rs:
xen-core/abi/src/shared_info.rs:
xen-core/abi/src/timer.rs:
xen-core/abi/src/start_info.rs:
xen-core/abi/src/bytes.rs:
