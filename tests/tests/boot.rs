//! Boot tests: the real hypervisor image in QEMU (q35, TCG).

use std::time::Duration;

use xen_tests::{boot, build_images, elf, Outcome, DEFAULT_DEADLINE};

#[test]
fn clean_boot_reaches_idle_and_powers_off() {
    let run = boot("on_idle=poweroff", DEFAULT_DEADLINE);
    run.expect_outcome(Outcome::PoweredOff)
        .expect_log("xen-core 0.1.0")
        .expect_log("cpu: NX on")
        .expect_log("8259 PICs masked")
        .expect_log("MiB of RAM managed")
        .expect_log("acpi: 1 CPU(s), LAPIC at 0xfee00000, 1 IOAPIC(s)")
        .expect_log("acpi: PCI config space (ECAM) segment 0")
        .expect_log("text RX, rodata R+NX, data RW+NX")
        .expect_log("SMEP on, SMAP on")
        .expect_log("ioapic 0: 24 pins, all masked")
        .expect_log("heap: 2048 KiB")
        .expect_log("idle: nothing to run")
        .expect_log("timer: one-shot fired")
        .expect_log("power off:")
        .expect_no_log("FATAL")
        .expect_no_log("PANIC");
}

#[test]
fn clocks_are_calibrated_and_the_timer_is_not_early() {
    let run = boot("on_idle=poweroff timer_test_ms=30", DEFAULT_DEADLINE);
    run.expect_outcome(Outcome::PoweredOff).expect_log("armed for +30 ms");
    let line = run.log.lines().find(|line| line.contains("timer: one-shot fired")).unwrap_or_default();
    // "timer: one-shot fired 30334 us after arming (334 us late)"
    let after_us: u64 = line
        .split("fired ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no firing time in {line:?}"));
    assert!(after_us >= 30_000, "the timer fired after {after_us} us, before its 30 ms deadline");
    let time = run.log.lines().find(|line| line.contains("time: TSC")).unwrap_or_default();
    assert!(time.contains("MHz") && !time.contains("TSC 0.000"), "{time}");
}

#[test]
fn page_fault_is_reported_with_vector_and_cr2_and_fails_the_run() {
    boot("selftest=pagefault", DEFAULT_DEADLINE)
        .expect_outcome(Outcome::Failed)
        .expect_log("FATAL TRAP: vector 14 (#PF page fault), error code 0x0000")
        .expect_log("not present on read in supervisor mode")
        .expect_log("CR2 0xfffff000dead0000")
        .expect_log("RIP 0xffffffff8")
        .expect_log("RAX 0x")
        .expect_log("R15 0x");
}

#[test]
fn writing_hypervisor_text_faults() {
    boot("selftest=write-text", DEFAULT_DEADLINE)
        .expect_outcome(Outcome::Failed)
        .expect_log("vector 14 (#PF page fault), error code 0x0003")
        .expect_log("protection violation on write in supervisor mode");
}

#[test]
fn executing_hypervisor_data_faults() {
    boot("selftest=exec-data", DEFAULT_DEADLINE)
        .expect_outcome(Outcome::Failed)
        .expect_log("vector 14 (#PF page fault), error code 0x0011")
        .expect_log("protection violation on instruction fetch");
}

#[test]
fn stack_overflow_hits_the_guard_page_and_double_faults_on_its_own_stack() {
    boot("selftest=stack-overflow", DEFAULT_DEADLINE)
        .expect_outcome(Outcome::Failed)
        .expect_log("FATAL TRAP: vector 8 (#DF double fault)");
}

#[test]
fn invalid_opcode_is_reported() {
    boot("selftest=ud2", DEFAULT_DEADLINE)
        .expect_outcome(Outcome::Failed)
        .expect_log("FATAL TRAP: vector 6 (#UD invalid opcode)");
}

#[test]
fn panic_is_reported_with_location_and_fails_the_run() {
    boot("selftest=panic", DEFAULT_DEADLINE)
        .expect_outcome(Outcome::Failed)
        .expect_log("PANIC at xen-core/src/arch/selftest.rs:")
        .expect_log("deliberate panic at boot");
}

#[test]
fn log_level_comes_from_the_command_line() {
    let quiet = boot("loglvl=warning on_idle=poweroff frobnicate=1", DEFAULT_DEADLINE);
    quiet
        .expect_outcome(Outcome::PoweredOff)
        .expect_log("W command line: ignoring \"frobnicate=1\"")
        .expect_no_log("I memory:")
        .expect_no_log("I power off");
    let chatty = boot("loglvl=debug on_idle=poweroff", DEFAULT_DEADLINE);
    chatty.expect_outcome(Outcome::PoweredOff).expect_log("I memory:").expect_log("e820 [");
}

#[test]
fn a_machine_that_never_stops_is_killed_at_the_deadline() {
    // With the default on_idle=halt the hypervisor idles forever.
    let deadline = Duration::from_secs(3);
    let run = boot("", deadline);
    run.expect_outcome(Outcome::TimedOut).expect_log("idle: nothing to run");
    assert!(run.elapsed < deadline + Duration::from_secs(5), "killing took {:?}", run.elapsed);
}

#[test]
fn image_loads_as_one_contiguous_multiboot_image() {
    let image = std::fs::read(build_images()).expect("read the image");
    let segments = elf::load_segments(&image).expect("an ELF64 image");
    assert!(!segments.is_empty());
    let first = segments[0];
    let slide = first.offset as i128 - first.physical_address as i128;
    for segment in segments.iter().filter(|segment| segment.file_size > 0) {
        assert_eq!(
            segment.offset as i128 - segment.physical_address as i128,
            slide,
            "segment {segment:x?} breaks the file's linear layout, which the a.out kludge needs"
        );
    }
    for segment in &segments {
        assert!(!(segment.flags & 1 != 0 && segment.flags & 2 != 0), "a segment is both writable and executable: {segment:x?}");
    }
    let header = elf::multiboot_header(&image).expect("a multiboot1 header in the first 8 KiB");
    assert_ne!(header.flags & (1 << 16), 0, "the a.out kludge flag");
    let [header_address, load_address, load_end, bss_end, entry] = header.addresses;
    assert_eq!(i128::from(header_address) - i128::from(load_address), header.file_offset as i128 - first.offset as i128);
    assert_eq!(u64::from(load_address), first.physical_address);
    assert!(load_end > load_address && bss_end >= load_end, "{:x?}", header.addresses);
    let last_loaded = segments.iter().filter(|segment| segment.file_size > 0).map(|segment| segment.physical_address + segment.file_size).max();
    assert_eq!(Some(u64::from(load_end)), last_loaded, "load_end_addr must cover every byte in the file");
    let end_of_memory = segments.iter().map(|segment| segment.physical_address + segment.memory_size).max();
    assert_eq!(Some(u64::from(bss_end)), end_of_memory, "bss_end_addr must cover the bss");
    assert!(u64::from(entry) >= first.physical_address && u64::from(entry) < first.physical_address + first.file_size);
}
