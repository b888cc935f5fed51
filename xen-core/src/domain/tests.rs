//! Host tests of the domain builder: layout, permissions, start-info,
//! registers, guest copies, failure without leaks, and complete teardown.

use super::*;
use crate::elf_loader::test_image::{Image, TEXT_ADDRESS};
use crate::page_table::flags;
pub(crate) use fake_machine::FakeMachine;

#[path = "fake_machine.rs"]
pub(crate) mod fake_machine;

pub(crate) const ENTRY_PAGE: HypervisorMapping =
    HypervisorMapping { virtual_address: 0xffff_ffff_8011_0000, physical_address: 0x11_0000, flags: 0 };

/// RAM of the test domains.
pub(crate) const MEMORY: u64 = 2 << 20;

pub(crate) fn spec(memory_bytes: u64) -> DomainSpec<'static> {
    DomainSpec { name: "probe", seclabel: "untrusted_t", memory_bytes, flags: 0, command_line: "action=hello" }
}

pub(crate) fn build(machine: &mut FakeMachine) -> Box<Domain> {
    let image = Image::valid().build();
    Domain::build(machine, DomId(3), &spec(MEMORY), &image, &[ENTRY_PAGE], 0).unwrap()
}

#[test]
fn builds_ram_tables_start_info_and_registers() {
    let mut machine = FakeMachine::new(1200);
    let domain = build(&mut machine);
    assert_eq!(domain.nr_pages(), 512);
    assert_eq!(machine.free_frame_count(), 1200 - 512 - domain.space.table_frames);
    // Every page of RAM is mapped at RAM_BASE + N * 4096, user-accessible.
    for pfn in [0u64, 1, 511] {
        let (physical, leaf) = domain.space.translate(&machine, layout::pfn_to_address(pfn)).unwrap();
        assert_eq!(physical, domain.p2m[pfn as usize].address());
        assert_ne!(leaf & flags::USER, 0);
    }
    // Start-info is read-only; text is executable and read-only; data is
    // writable and not executable; the hypervisor page is supervisor-only.
    let (_, start_info_leaf) = domain.space.translate(&machine, RAM_BASE).unwrap();
    assert_eq!(start_info_leaf & flags::WRITABLE, 0);
    let (_, text_leaf) = domain.space.translate(&machine, TEXT_ADDRESS).unwrap();
    assert_eq!(text_leaf & (flags::WRITABLE | flags::NO_EXECUTE), 0);
    let (_, data_leaf) = domain.space.translate(&machine, TEXT_ADDRESS + 0x1000).unwrap();
    assert_eq!(data_leaf & (flags::WRITABLE | flags::NO_EXECUTE), flags::WRITABLE | flags::NO_EXECUTE);
    let (physical, entry_leaf) = domain.space.translate(&machine, ENTRY_PAGE.virtual_address).unwrap();
    assert_eq!(physical, ENTRY_PAGE.physical_address);
    assert_eq!(entry_leaf & flags::USER, 0);
    // Nothing below RAM, nothing past it.
    assert_eq!(domain.space.translate(&machine, RAM_BASE - 4096), None);
    assert_eq!(domain.space.translate(&machine, RAM_BASE + MEMORY), None);
    // Start-info says who it is.
    let mut page = [0u8; start_info::SIZE];
    domain.copy_from_guest(&machine, GuestAddress(RAM_BASE), &mut page).unwrap();
    let info = StartInfo::decode(&page).unwrap();
    assert_eq!((info.domid, info.nr_pages, info.name(), info.command_line()), (3, 512, "probe", "action=hello"));
    assert!(info.first_free_pfn > (TEXT_ADDRESS - RAM_BASE) / PAGE_SIZE);
    // The registers start it in ring 3 at its entry, stack at the top of RAM.
    assert_eq!(domain.registers.rip, Image::valid().entry);
    assert_eq!(domain.registers.rsp, RAM_BASE + MEMORY);
    assert_eq!(domain.registers.rdi, RAM_BASE);
    assert_eq!((domain.registers.cs, domain.registers.ss), (USER_CODE_SELECTOR, USER_DATA_SELECTOR));
    assert_eq!(domain.registers.rflags, 0x202);
}

#[test]
fn image_bytes_are_copied_and_bss_is_zero() {
    let mut machine = FakeMachine::new(1200);
    let image = Image::valid().build();
    let domain = Domain::build(&mut machine, DomId(1), &spec(MEMORY), &image, &[], 0).unwrap();
    let mut text = [0u8; 0x180];
    domain.copy_from_guest(&machine, GuestAddress(TEXT_ADDRESS), &mut text).unwrap();
    assert_eq!(&text[..], &image[0x1000..0x1180]);
    let mut bss = [0xffu8; 0x100];
    domain.copy_from_guest(&machine, GuestAddress(TEXT_ADDRESS + 0x1000 + 0x40), &mut bss).unwrap();
    assert!(bss.iter().all(|&byte| byte == 0), "bss and every fresh frame start zeroed");
}

#[test]
fn guest_copies_are_bounded_to_its_ram() {
    let mut machine = FakeMachine::new(1200);
    let domain = build(&mut machine);
    let mut buffer = [0u8; 16];
    let end = RAM_BASE + MEMORY;
    assert!(domain.copy_from_guest(&machine, GuestAddress(end - 16), &mut buffer).is_ok());
    for address in [end - 15, end, RAM_BASE - 1, 0, 0xffff_ffff_8010_0000, 0x0000_8000_0000_0000, u64::MAX - 3] {
        assert_eq!(
            domain.copy_from_guest(&machine, GuestAddress(address), &mut buffer),
            Err(GuestFault { address, length: 16 }),
            "{address:#x}"
        );
    }
    // A copy across a page boundary lands in two machine frames.
    let data = [7u8; 100];
    domain.write_guest(&mut machine, RAM_BASE + 4096 * 5 - 50, &data).unwrap();
    let mut back = [0u8; 100];
    domain.copy_from_guest(&machine, GuestAddress(RAM_BASE + 4096 * 5 - 50), &mut back).unwrap();
    assert_eq!(back, data);
}

#[test]
fn teardown_returns_and_scrubs_every_frame() {
    let mut machine = FakeMachine::new(1200);
    let domain = build(&mut machine);
    let tables = domain.space.table_frames;
    let pattern_frame = domain.p2m[10];
    domain.write_guest(&mut machine, RAM_BASE + 10 * 4096, &[0x5a; 64]).unwrap();
    let teardown = domain.destroy(&mut machine);
    assert_eq!(teardown, Teardown { ram_frames: 512, table_frames: tables });
    assert_eq!(machine.free_frame_count(), 1200);
    assert_eq!(machine.scrubbed, 512 + tables);
    assert!(machine.frames[&pattern_frame.0].iter().all(|&byte| byte == 0));
    // The hypervisor's own page was mapped, never freed.
    assert!(!machine.frames.contains_key(&(ENTRY_PAGE.physical_address / 4096)));
}

#[test]
fn failures_leave_nothing_allocated() {
    let image = Image::valid().build();
    // Not enough memory: refused before taking a frame.
    let mut machine = FakeMachine::new(300);
    let result = Domain::build(&mut machine, DomId(1), &spec(MEMORY), &image, &[], 0);
    assert!(matches!(result, Err(BuildError::OutOfMemory { .. })));
    assert_eq!(machine.free_frame_count(), 300);
    // A command line the domain would not see as asked: refused, not cut.
    let long = "x".repeat(xen_abi::start_info::COMMAND_LINE_BYTES);
    for line in ["action=hello\0secret", long.as_str()] {
        let spec = DomainSpec { command_line: line, ..spec(MEMORY) };
        let result = Domain::build(&mut machine, DomId(1), &spec, &image, &[], 0);
        assert_eq!(result.err(), Some(BuildError::BadCommandLine));
    }
    let fits = "x".repeat(xen_abi::start_info::COMMAND_LINE_BYTES - 1);
    let mut roomy = FakeMachine::new(1200);
    assert!(Domain::build(&mut roomy, DomId(1), &DomainSpec { command_line: &fits, ..spec(MEMORY) }, &image, &[], 0).is_ok());
    // Bad memory sizes.
    for bytes in [4095, 1 << 19, (1 << 30) + 4096, MEMORY + 1] {
        let result = Domain::build(&mut machine, DomId(1), &spec(bytes), &image, &[], 0);
        assert_eq!(result.err(), Some(BuildError::BadMemorySize(bytes)));
    }
    // A bad image.
    let result = Domain::build(&mut machine, DomId(1), &spec(MEMORY), b"not an elf", &[], 0);
    assert!(matches!(result, Err(BuildError::Image(_))));
    // A hypervisor mapping that collides with RAM fails mid-build: undone.
    let mut machine = FakeMachine::new(1200);
    let clash = HypervisorMapping { virtual_address: RAM_BASE, physical_address: 0x1000, flags: 0 };
    let result = Domain::build(&mut machine, DomId(1), &spec(MEMORY), &image, &[clash], 0);
    assert!(matches!(result, Err(BuildError::Map(MapError::AlreadyMapped(_)))));
    assert_eq!(machine.free_frame_count(), 1200);
}

#[test]
fn a_new_domain_never_sees_an_old_ones_data() {
    let mut machine = FakeMachine::new(1200);
    let first = build(&mut machine);
    for pfn in 4..512 {
        first.write_guest(&mut machine, layout::pfn_to_address(pfn), &[0xc3; 4096]).unwrap();
    }
    first.destroy(&mut machine);
    let second = build(&mut machine);
    let mut page = [0u8; 4096];
    for pfn in 0..512 {
        second.copy_from_guest(&machine, GuestAddress(layout::pfn_to_address(pfn)), &mut page).unwrap();
        assert!(!page.windows(8).any(|window| window == [0xc3; 8]), "pfn {pfn} holds the old pattern");
    }
}

#[test]
fn default_vector_state_is_clean() {
    let state = VectorState::default();
    assert_eq!(&state.0[0..2], &0x037fu16.to_le_bytes());
    assert_eq!(&state.0[24..28], &0x1f80u32.to_le_bytes());
    assert!(state.0[32..].iter().all(|&byte| byte == 0));
    assert_eq!(core::mem::align_of::<VectorState>(), 16);
}

#[test]
fn teardown_in_bounded_steps_returns_everything() {
    let mut machine = FakeMachine::new(1200);
    let mut domain = build(&mut machine);
    let tables = domain.space.table_frames;
    let mut steps = 0;
    while !domain.release_some(&mut machine, 100) {
        steps += 1;
        assert!(steps < 10);
    }
    assert_eq!(steps, 5, "512 frames in steps of 100");
    let teardown = domain.destroy(&mut machine);
    assert_eq!(teardown, Teardown { ram_frames: 512, table_frames: tables });
    assert_eq!(machine.free_frame_count(), 1200);
}

#[test]
fn grant_and_maptrack_sizes_are_valid() {
    assert!(Maptrack::new(MAPTRACK_ENTRIES).is_some());
    assert!(ActiveGrants::new(GRANT_ENTRIES).is_some());
}

#[test]
fn a_new_domain_never_gets_an_id_in_use() {
    // The control domain (1) and a long-lived domain (2) outlive 32 K
    // creations: when the counter wraps, their ids are skipped, and so is 0.
    let live = [DomId(1), DomId(2)];
    let in_use = |id: DomId| live.contains(&id);
    let last = DomId::FIRST_RESERVED.0 - 1;
    assert_eq!(free_domain_id(5, in_use), Some(DomId(5)));
    assert_eq!(free_domain_id(last, in_use), Some(DomId(last)));
    assert_eq!(free_domain_id(last + 1, in_use), Some(DomId(3)));
    assert_eq!(free_domain_id(0, in_use), Some(DomId(3)));
    assert_eq!(free_domain_id(1, in_use), Some(DomId(3)));
    assert_eq!(free_domain_id(u16::MAX, |_| false), Some(DomId(1)));
    assert_eq!(free_domain_id(7, |_| true), None);
}

#[test]
fn a_held_frame_unmapped_during_teardown_is_freed_not_orphaned() {
    use crate::grant_table::fake_entries::FakeTable;
    use crate::grant_table::{pin, release, GrantRef, Granter};
    let mut machine = FakeMachine::new(1200);
    let mut domain = build(&mut machine);
    let free_before = machine.free_frame_count();
    let mut table = FakeTable::new();
    // Two frames granted near the top of RAM, both mapped by domain 5.
    let pfns = [510u32, 511];
    let mut pins = alloc::vec::Vec::new();
    for (index, pfn) in pfns.into_iter().enumerate() {
        let reference = GrantRef(10 + index as u32);
        table.grant(reference, DomId(5), pfn, false);
        let mut granter = Granter { id: domain.id, entries: &mut table, active: &mut domain.active_grants, p2m: &domain.p2m };
        pins.push(pin(&mut granter, DomId(5), reference, true).unwrap());
    }
    // The first teardown step keeps both back.
    assert!(!domain.release_some(&mut machine, 100));
    assert_eq!(domain.held_frames.len(), 2);
    // Between steps, the mapper unmaps the first.
    let first = pins.remove(0);
    let mut granter = Granter { id: domain.id, entries: &mut table, active: &mut domain.active_grants, p2m: &domain.p2m };
    assert!(release(&mut granter, first).unwrap().frame_unpinned);
    while !domain.release_some(&mut machine, 100) {}
    assert_eq!(domain.free_unpinned_held_frames(&mut machine), 1);
    assert_eq!(domain.held_frames.len(), 1, "only the frame still mapped is kept");
    assert!(domain.active_grants.is_frame_pinned(domain.held_frames[0]));
    let teardown = domain.destroy(&mut machine);
    assert_eq!(teardown.ram_frames, 511);
    // Everything but the one frame still mapped came back.
    assert_eq!(machine.free_frame_count(), free_before + 511 + teardown.table_frames);
    core::mem::forget(pins);
}
