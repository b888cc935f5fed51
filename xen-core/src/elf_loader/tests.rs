//! Tests of the ELF loader: a valid image's plan, every rejection, and
//! proptests that arbitrary and mutated images never panic.

use super::test_image::{put, Header, Image, TEXT_ADDRESS};
use super::*;
use proptest::prelude::*;

const RAM: u64 = 64 << 20;

fn plan_of(image: &Image) -> Result<LoadPlan, ElfError> {
    plan(&image.build(), RAM)
}

fn with_headers(headers: Vec<Header>) -> Image {
    Image {
        headers,
        ..Image::valid()
    }
}

#[test]
fn valid_image_plans_its_segments() {
    let bytes = Image::valid().build();
    let plan = plan(&bytes, RAM).unwrap();
    assert_eq!(plan.entry, TEXT_ADDRESS + 0x10);
    assert_eq!(plan.segments.len(), 2);
    assert_eq!(
        plan.segments[0],
        LoadSegment {
            guest_address: TEXT_ADDRESS,
            file_offset: 0x1000,
            file_size: 0x180,
            memory_size: 0x180,
            writable: false,
            executable: true,
        }
    );
    assert!(plan.segments[1].writable && !plan.segments[1].executable);
    assert_eq!(plan.image_end, TEXT_ADDRESS + 0x4000);
    assert_eq!(
        plan.segments[1].to_string(),
        "[0x40101000, 0x40103800) rw- from file 0x1180+0x40"
    );
    fuzz_one(&bytes);
}

#[test]
fn same_permission_segments_may_share_a_page() {
    let image = with_headers(vec![
        Header::load(FLAG_READ | FLAG_EXECUTE, 0x100, TEXT_ADDRESS, 0x80, 0x80),
        Header::load(
            FLAG_READ | FLAG_EXECUTE,
            0x180,
            TEXT_ADDRESS + 0x80,
            0x80,
            0x80,
        ),
    ]);
    assert_eq!(plan_of(&image).unwrap().image_end, TEXT_ADDRESS + 0x1000);
}

#[test]
fn empty_load_segments_are_skipped() {
    let mut image = Image::valid();
    image.headers.push(Header::load(FLAG_READ, 0, 0x10, 0, 0));
    assert_eq!(plan_of(&image).unwrap().segments.len(), 2);
}

#[test]
fn ram_size_must_be_in_range_and_page_multiple() {
    let bytes = Image::valid().build();
    for ram_bytes in [
        0,
        MIN_RAM_BYTES - PAGE_SIZE,
        MAX_RAM_BYTES + PAGE_SIZE,
        RAM + 1,
    ] {
        assert_eq!(
            plan(&bytes, ram_bytes),
            Err(ElfError::RamSize { ram_bytes })
        );
    }
}

#[test]
fn header_identification_is_checked() {
    let valid = Image::valid().build();
    assert_eq!(
        plan(&valid[..63], RAM),
        Err(ElfError::TooShort { length: 63 })
    );
    let cases: [(usize, &[u8], ElfError); 8] = [
        (0, b"\x7fELG", ElfError::NotElf),
        (4, &[1], ElfError::NotElf64 { class: 1 }),
        (5, &[2], ElfError::NotLittleEndian { data: 2 }),
        (6, &[0], ElfError::UnsupportedVersion { version: 0 }),
        (
            20,
            &[2, 0, 0, 0],
            ElfError::UnsupportedVersion { version: 2 },
        ),
        (18, &[3, 0], ElfError::WrongMachine { machine: 3 }),
        (16, &[1, 0], ElfError::NotExecutable { elf_type: 1 }),
        (54, &[64, 0], ElfError::ProgramHeaderSize { size: 64 }),
    ];
    for (offset, value, expected) in cases {
        let mut bytes = valid.clone();
        put(&mut bytes, offset, value);
        assert_eq!(
            plan(&bytes, RAM),
            Err(expected),
            "poking {value:?} at {offset}"
        );
    }
}

#[test]
fn position_independent_images_are_rejected_with_advice() {
    let image = Image {
        elf_type: TYPE_DYNAMIC,
        ..Image::valid()
    };
    let error = plan_of(&image).unwrap_err();
    assert_eq!(error, ElfError::PositionIndependent);
    assert_eq!(
        error.to_string(),
        "position-independent image: link with -C relocation-model=static"
    );
}

#[test]
fn program_header_table_is_bounded_and_in_range() {
    let mut bytes = Image::valid().build();
    put(&mut bytes, 56, &17u16.to_le_bytes());
    assert_eq!(
        plan(&bytes, RAM),
        Err(ElfError::TooManyProgramHeaders { count: 17 })
    );
    for offset in [u64::MAX - 10, 0x1200, 0x11f0] {
        let mut bytes = Image::valid().build();
        put(&mut bytes, 32, &offset.to_le_bytes());
        assert_eq!(
            plan(&bytes, RAM),
            Err(ElfError::ProgramHeadersOutOfRange {
                offset,
                count: 3,
                image_length: 0x11c0
            })
        );
    }
}

#[test]
fn interpreter_dynamic_and_tls_segments_are_rejected() {
    for segment_type in [SEGMENT_INTERPRETER, SEGMENT_DYNAMIC, SEGMENT_TLS] {
        let mut image = Image::valid();
        image.headers[2].segment_type = segment_type;
        let error = plan_of(&image).unwrap_err();
        assert_eq!(
            error,
            ElfError::ForbiddenSegment {
                index: 2,
                segment_type
            }
        );
        assert!(error.to_string().contains("link a static executable"));
    }
}

#[test]
fn file_size_may_not_exceed_memory_size() {
    let mut image = Image::valid();
    image.headers[1].memory_size = 0x20;
    assert_eq!(
        plan_of(&image),
        Err(ElfError::FileSizeExceedsMemorySize {
            index: 1,
            file_size: 0x40,
            memory_size: 0x20
        })
    );
}

#[test]
fn file_range_must_be_inside_the_image() {
    let mut bytes = Image::valid().build();
    let image_length = bytes.len() as u64;
    bytes.truncate(0x11b0);
    assert_eq!(image_length, 0x11c0);
    assert_eq!(
        plan(&bytes, RAM),
        Err(ElfError::FileRangeOutOfImage {
            index: 1,
            file_offset: 0x1180,
            file_size: 0x40,
            image_length: 0x11b0
        })
    );
    let mut bytes = Image::valid().build();
    put(&mut bytes, 64 + 8, &(u64::MAX - 0x10).to_le_bytes());
    assert_eq!(
        plan(&bytes, RAM),
        Err(ElfError::FileRangeOutOfImage {
            index: 0,
            file_offset: u64::MAX - 0x10,
            file_size: 0x180,
            image_length
        })
    );
}

#[test]
fn segments_must_stay_inside_the_ram_window() {
    let (window_start, window_end) = load_window(RAM);
    assert_eq!(
        (window_start, window_end),
        (0x4010_0000, 0x4400_0000 - 0x1_0000)
    );
    let below = Header::load(FLAG_READ, 0x100, window_start - 0x1000, 0x10, 0x10);
    let above = Header::load(FLAG_READ, 0x100, window_end - 0x10, 0x10, 0x11);
    for header in [below, above] {
        let mut image = Image::valid();
        image.headers.push(header);
        let error = plan_of(&image).unwrap_err();
        assert!(
            matches!(error, ElfError::OutsideRamWindow { index: 3, .. }),
            "{error}"
        );
        assert!(error
            .to_string()
            .contains("outside the domain's RAM window [0x40100000, 0x43ff0000)"));
    }
    let mut image = Image::valid();
    image
        .headers
        .push(Header::load(FLAG_READ, 0x100, u64::MAX - 0x10, 0, 0x20));
    assert!(matches!(
        plan_of(&image),
        Err(ElfError::AddressOverflow { index: 3, .. })
    ));
    // A whole-RAM segment does not fit either: the stack and low pages are reserved.
    let mut image = Image::valid();
    image.headers[1].memory_size = RAM;
    assert!(matches!(
        plan_of(&image),
        Err(ElfError::OutsideRamWindow { index: 1, .. })
    ));
    // With the smallest RAM, the window is empty.
    assert!(matches!(
        plan(&Image::valid().build(), MIN_RAM_BYTES),
        Err(ElfError::OutsideRamWindow { index: 0, .. })
    ));
}

#[test]
fn writable_and_executable_segments_are_rejected() {
    let mut image = Image::valid();
    image.headers[1].flags = FLAG_READ | FLAG_WRITE | FLAG_EXECUTE;
    let error = plan_of(&image).unwrap_err();
    assert!(matches!(
        error,
        ElfError::WritableAndExecutable { index: 1, .. }
    ));
    assert!(error.to_string().contains("W^X"));
}

#[test]
fn overlapping_segments_are_rejected() {
    let mut image = Image::valid();
    image.headers.push(Header::load(
        FLAG_READ | FLAG_WRITE,
        0x100,
        TEXT_ADDRESS + 0x2000,
        0x10,
        0x10,
    ));
    let error = plan_of(&image).unwrap_err();
    assert_eq!(
        error,
        ElfError::Overlap {
            index: 3,
            start: TEXT_ADDRESS + 0x2000,
            end: TEXT_ADDRESS + 0x2010,
            other: 1,
            other_start: TEXT_ADDRESS + 0x1000,
            other_end: TEXT_ADDRESS + 0x3800,
        }
    );
    assert_eq!(
        error.to_string(),
        "segment 3 [0x40102000, 0x40102010) overlaps segment 1 [0x40101000, 0x40103800)"
    );
}

#[test]
fn a_page_shared_by_different_permissions_is_rejected() {
    let image = with_headers(vec![
        Header::load(FLAG_READ | FLAG_EXECUTE, 0x100, TEXT_ADDRESS, 0x80, 0x80),
        Header::load(FLAG_READ, 0x180, TEXT_ADDRESS + 0x800, 0x80, 0x80),
    ]);
    assert_eq!(
        plan_of(&image),
        Err(ElfError::SharedPagePermissions {
            index: 1,
            other: 0,
            page: TEXT_ADDRESS
        })
    );
}

#[test]
fn an_image_needs_a_load_segment() {
    let mut image = with_headers(vec![]);
    assert_eq!(plan_of(&image), Err(ElfError::NoLoadSegment));
    image.headers.push(Header::load(
        FLAG_READ | FLAG_EXECUTE,
        0,
        TEXT_ADDRESS,
        0,
        0,
    ));
    assert_eq!(plan_of(&image), Err(ElfError::NoLoadSegment));
}

#[test]
fn entry_must_be_in_an_executable_segment() {
    for entry in [TEXT_ADDRESS + 0x1010, TEXT_ADDRESS + 0x180, 0] {
        let image = Image {
            entry,
            ..Image::valid()
        };
        assert_eq!(plan_of(&image), Err(ElfError::EntryNotExecutable { entry }));
    }
}

#[test]
fn every_error_displays_something() {
    let errors = [
        ElfError::TooShort { length: 1 },
        ElfError::NotElf,
        ElfError::ForbiddenSegment {
            index: 0,
            segment_type: 99,
        },
        ElfError::NoLoadSegment,
        ElfError::AddressOverflow {
            index: 0,
            guest_address: 1,
            memory_size: 2,
        },
    ];
    for error in errors {
        assert!(!error.to_string().is_empty());
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        fuzz_one(&data);
    }

    #[test]
    fn mutated_images_never_panic(
        edits in proptest::collection::vec((0usize..0x200, any::<u8>()), 1..8),
        length in 0usize..0x1300,
    ) {
        let mut bytes = Image::valid().build();
        for (offset, value) in edits {
            bytes[offset] = value;
        }
        bytes.resize(length.min(bytes.len() + 0x100), 0);
        fuzz_one(&bytes);
    }

    #[test]
    fn mutated_headers_never_panic(
        field in 0usize..7,
        value in prop_oneof![any::<u64>(), Just(u64::MAX), Just(0u64), (0u64..0x2000).prop_map(|x| TEXT_ADDRESS + x)],
        index in 0usize..3,
    ) {
        let mut image = Image::valid();
        let header = &mut image.headers[index];
        match field {
            0 => header.flags = value as u32,
            1 => header.file_offset = value % 0x2000,
            2 => header.guest_address = value,
            3 => header.file_size = value % 0x2000,
            4 => header.memory_size = value,
            5 => header.segment_type = value as u32,
            _ => image.entry = value,
        }
        fuzz_one(&image.build());
    }
}
