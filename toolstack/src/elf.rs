//! What of a kernel image travels to the hypervisor: the ELF header, the
//! program headers and the bytes of the loadable segments, nothing else.
//! Debug information and symbol tables (most of a debug-info build's size)
//! stay on the host, so `xl create`'s kernel crosses the operator's serial
//! channel in a fraction of the time. The hypervisor's loader reads only
//! these parts, so the domain it builds is the same. (The boot bundle keeps
//! kernels as they are: tests hand the loader hostile images through it.)

use std::fmt;

use xen_core::elf_loader;

const HEADER_BYTES: usize = 64;
const PROGRAM_HEADER_BYTES: usize = 56;
const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;
const PAGE: u64 = 4096;

/// Why an image cannot be reduced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfError(pub String);

impl fmt::Display for ElfError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for ElfError {}

/// The image reduced to its ELF header, one `PT_LOAD` program header per
/// segment and the segments' file bytes (each placed at a page-aligned
/// offset congruent to its address, as the loader expects). What counts as
/// a segment is decided by the hypervisor's own loader
/// (`xen_core::elf_loader::plan`, for a domain of `ram_bytes`), so an image
/// it would refuse is refused here too, with its reason.
pub fn loadable_image(image: &[u8], ram_bytes: u64) -> Result<Vec<u8>, ElfError> {
    let plan = elf_loader::plan(image, ram_bytes).map_err(|problem| ElfError(format!("not a loadable image: {problem:?}")))?;
    let count = plan.segments.len();
    let table_bytes = count * PROGRAM_HEADER_BYTES;
    // The original header, pointed at the new table and without sections.
    let mut out = image[..HEADER_BYTES].to_vec();
    out[32..40].copy_from_slice(&(HEADER_BYTES as u64).to_le_bytes()); // e_phoff
    out[40..48].copy_from_slice(&0u64.to_le_bytes()); // e_shoff
    out[54..56].copy_from_slice(&(PROGRAM_HEADER_BYTES as u16).to_le_bytes()); // e_phentsize
    out[56..58].copy_from_slice(&(count as u16).to_le_bytes()); // e_phnum
    out[58..64].copy_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    out.resize(HEADER_BYTES + table_bytes, 0);
    for (index, segment) in plan.segments.iter().enumerate() {
        // Keep `offset ≡ address (mod page)`.
        let cursor = out.len() as u64;
        let mut placed = cursor.next_multiple_of(PAGE) + segment.guest_address % PAGE;
        if placed < cursor {
            placed += PAGE;
        }
        let flags = PF_R | if segment.writable { PF_W } else { 0 } | if segment.executable { PF_X } else { 0 };
        let mut header = [0u8; PROGRAM_HEADER_BYTES];
        header[0..4].copy_from_slice(&PT_LOAD.to_le_bytes());
        header[4..8].copy_from_slice(&flags.to_le_bytes());
        header[8..16].copy_from_slice(&placed.to_le_bytes());
        header[16..24].copy_from_slice(&segment.guest_address.to_le_bytes());
        header[24..32].copy_from_slice(&segment.guest_address.to_le_bytes());
        header[32..40].copy_from_slice(&segment.file_size.to_le_bytes());
        header[40..48].copy_from_slice(&segment.memory_size.to_le_bytes());
        header[48..56].copy_from_slice(&PAGE.to_le_bytes());
        out[HEADER_BYTES + index * PROGRAM_HEADER_BYTES..][..PROGRAM_HEADER_BYTES].copy_from_slice(&header);
        out.resize(placed as usize, 0);
        // The loader checked the file range lies inside the image.
        let (start, size) = (segment.file_offset as usize, segment.file_size as usize);
        out.extend_from_slice(&image[start..start + size]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = 8 << 20;

    fn u64_at(bytes: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    }

    /// A two-segment image with junk (a stand-in for debug sections) after.
    fn image() -> Vec<u8> {
        let mut bytes = vec![0u8; 0x3000];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[6] = 1;
        bytes[16..18].copy_from_slice(&2u16.to_le_bytes());
        bytes[20..24].copy_from_slice(&1u32.to_le_bytes());
        bytes[52..54].copy_from_slice(&64u16.to_le_bytes());
        bytes[18..20].copy_from_slice(&0x3eu16.to_le_bytes());
        bytes[24..32].copy_from_slice(&0x4010_0000u64.to_le_bytes());
        bytes[32..40].copy_from_slice(&64u64.to_le_bytes());
        bytes[40..48].copy_from_slice(&0x2800u64.to_le_bytes());
        bytes[54..56].copy_from_slice(&56u16.to_le_bytes());
        bytes[56..58].copy_from_slice(&2u16.to_le_bytes());
        for (index, (offset, address, size)) in [(0x1000u64, 0x4010_0000u64, 0x20u64), (0x2000, 0x4010_1010, 0x10)].into_iter().enumerate() {
            let header = &mut bytes[64 + index * 56..][..56];
            header[0..4].copy_from_slice(&1u32.to_le_bytes());
            header[4..8].copy_from_slice(&(if index == 0 { 5u32 } else { 4 }).to_le_bytes());
            header[8..16].copy_from_slice(&offset.to_le_bytes());
            header[16..24].copy_from_slice(&address.to_le_bytes());
            header[32..40].copy_from_slice(&size.to_le_bytes());
            header[40..48].copy_from_slice(&size.to_le_bytes());
        }
        for byte in &mut bytes[0x1000..0x1020] {
            *byte = 0xaa;
        }
        for byte in &mut bytes[0x2000..0x2010] {
            *byte = 0xbb;
        }
        for byte in &mut bytes[0x2800..0x3000] {
            *byte = 0xdd;
        }
        bytes
    }

    #[test]
    fn segments_keep_their_bytes_and_congruent_offsets_and_the_rest_goes() {
        let reduced = loadable_image(&image(), RAM).unwrap();
        assert!(!reduced.contains(&0xdd), "section bytes left behind");
        assert_eq!(u64_at(&reduced, 40), 0);
        for (index, (address, fill, size)) in [(0x4010_0000u64, 0xaa, 0x20usize), (0x4010_1010, 0xbb, 0x10)].into_iter().enumerate() {
            let header = &reduced[64 + index * 56..][..56];
            let offset = u64_at(header, 8);
            assert_eq!(offset % 4096, address % 4096);
            assert!(reduced[offset as usize..][..size].iter().all(|&byte| byte == fill));
        }
    }

    #[test]
    fn bad_images_are_refused() {
        assert!(loadable_image(b"not an elf", RAM).is_err());
        let mut truncated = image();
        truncated.truncate(0x1010);
        // A segment running past the end of the file: the loader's own verdict.
        let truncated_error = loadable_image(&truncated, RAM).unwrap_err().0;
        assert!(truncated_error.contains("FileRangeOutOfImage"), "{truncated_error}");
        let mut no_headers = image();
        no_headers[56..58].copy_from_slice(&0u16.to_le_bytes());
        assert!(loadable_image(&no_headers, RAM).is_err());
        let mut far = image();
        far[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(loadable_image(&far, RAM).is_err());
    }

    #[test]
    fn the_real_hypervisor_loader_accepts_a_reduced_guest() {
        let probe = crate::qemu::workspace_root().join("target/images/x86_64-unknown-none/release/probe");
        let Ok(original) = std::fs::read(&probe) else {
            eprintln!("no probe image built; skipped");
            return;
        };
        let reduced = loadable_image(&original, RAM).unwrap();
        assert!(reduced.len() * 4 < original.len(), "{} vs {}", reduced.len(), original.len());
        let ram = RAM;
        let reduced_plan = xen_core::elf_loader::plan(&reduced, ram).expect("the hypervisor's loader accepts it");
        let original_plan = xen_core::elf_loader::plan(&original, ram).expect("and the original");
        assert_eq!(reduced_plan.entry, original_plan.entry);
        assert_eq!(reduced_plan.segments.len(), original_plan.segments.len());
    }
}
