//! What of a kernel image travels to the hypervisor: the ELF header, the
//! program headers and the bytes of the loadable segments, nothing else.
//! Debug information and symbol tables (most of a debug-info build's size)
//! stay on the host, so `xl create`'s kernel crosses the operator's serial
//! channel in a fraction of the time. The hypervisor's loader reads only
//! these parts, so the domain it builds is the same. (The boot bundle keeps
//! kernels as they are: tests hand the loader hostile images through it.)

use std::fmt;

const HEADER_BYTES: usize = 64;
const PROGRAM_HEADER_BYTES: usize = 56;
const MAX_PROGRAM_HEADERS: usize = 64;
const PT_LOAD: u32 = 1;
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

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]))
}

/// The image reduced to its header, its `PT_LOAD` program headers and
/// their file bytes (each placed at a page-aligned offset congruent to its
/// address, as the loader expects). A file that is not a little-endian
/// ELF64 executable with sane program headers is refused.
pub fn loadable_image(image: &[u8]) -> Result<Vec<u8>, ElfError> {
    let fail = |what: &str| Err(ElfError(format!("not a loadable ELF64 image: {what}")));
    if image.len() < HEADER_BYTES || &image[..4] != b"\x7fELF" {
        return fail("no ELF magic");
    }
    if image[4] != 2 || image[5] != 1 {
        return fail("not 64-bit little-endian");
    }
    let program_offset = u64_at(image, 32);
    let entry_size = usize::from(u16_at(image, 54));
    let count = usize::from(u16_at(image, 56));
    if entry_size != PROGRAM_HEADER_BYTES || count == 0 || count > MAX_PROGRAM_HEADERS {
        return fail("program header table size");
    }
    let table_end = usize::try_from(program_offset)
        .ok()
        .and_then(|start| start.checked_add(count * PROGRAM_HEADER_BYTES).map(|end| (start, end)))
        .filter(|&(_, end)| end <= image.len());
    let Some((table_start, _)) = table_end else { return fail("program headers outside the file") };
    let mut loads = Vec::new();
    for index in 0..count {
        let header = &image[table_start + index * PROGRAM_HEADER_BYTES..][..PROGRAM_HEADER_BYTES];
        if u32_at(header, 0) != PT_LOAD {
            continue;
        }
        let (offset, address, file_size) = (u64_at(header, 8), u64_at(header, 16), u64_at(header, 32));
        let end = offset.checked_add(file_size).filter(|&end| end <= image.len() as u64);
        if end.is_none() {
            return fail("a segment runs past the end of the file");
        }
        loads.push((header.to_vec(), offset as usize, address, file_size as usize));
    }
    if loads.is_empty() {
        return fail("no loadable segment");
    }
    let table_bytes = loads.len() * PROGRAM_HEADER_BYTES;
    let mut out = image[..HEADER_BYTES].to_vec();
    out[32..40].copy_from_slice(&(HEADER_BYTES as u64).to_le_bytes()); // e_phoff
    out[40..48].copy_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    out[56..58].copy_from_slice(&(loads.len() as u16).to_le_bytes()); // e_phnum
    out[58..64].copy_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    out.resize(HEADER_BYTES + table_bytes, 0);
    let mut cursor = (HEADER_BYTES + table_bytes) as u64;
    for (index, (mut header, offset, address, file_size)) in loads.into_iter().enumerate() {
        // Keep `offset ≡ address (mod page)`.
        let mut placed = cursor.next_multiple_of(PAGE) + address % PAGE;
        if placed < cursor {
            placed += PAGE;
        }
        header[8..16].copy_from_slice(&placed.to_le_bytes());
        out[HEADER_BYTES + index * PROGRAM_HEADER_BYTES..][..PROGRAM_HEADER_BYTES].copy_from_slice(&header);
        out.resize(placed as usize, 0);
        out.extend_from_slice(&image[offset..offset + file_size]);
        cursor = out.len() as u64;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-segment image with junk (a stand-in for debug sections) after.
    fn image() -> Vec<u8> {
        let mut bytes = vec![0u8; 0x3000];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[16..18].copy_from_slice(&2u16.to_le_bytes());
        bytes[18..20].copy_from_slice(&0x3eu16.to_le_bytes());
        bytes[24..32].copy_from_slice(&0x4010_0000u64.to_le_bytes());
        bytes[32..40].copy_from_slice(&64u64.to_le_bytes());
        bytes[40..48].copy_from_slice(&0x2800u64.to_le_bytes());
        bytes[54..56].copy_from_slice(&56u16.to_le_bytes());
        bytes[56..58].copy_from_slice(&2u16.to_le_bytes());
        for (index, (offset, address, size)) in [(0x1000u64, 0x4010_0000u64, 0x20u64), (0x2000, 0x4010_1010, 0x10)].into_iter().enumerate() {
            let header = &mut bytes[64 + index * 56..][..56];
            header[0..4].copy_from_slice(&1u32.to_le_bytes());
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
        let reduced = loadable_image(&image()).unwrap();
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
        assert!(loadable_image(b"not an elf").is_err());
        let mut truncated = image();
        truncated.truncate(0x1010);
        assert!(loadable_image(&truncated).unwrap_err().0.contains("past the end"));
        let mut no_headers = image();
        no_headers[56..58].copy_from_slice(&0u16.to_le_bytes());
        assert!(loadable_image(&no_headers).is_err());
        let mut far = image();
        far[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(loadable_image(&far).is_err());
    }

    #[test]
    fn the_real_hypervisor_loader_accepts_a_reduced_guest() {
        let probe = crate::qemu::workspace_root().join("target/images/x86_64-unknown-none/release/probe");
        let Ok(original) = std::fs::read(&probe) else {
            eprintln!("no probe image built; skipped");
            return;
        };
        let reduced = loadable_image(&original).unwrap();
        assert!(reduced.len() * 4 < original.len(), "{} vs {}", reduced.len(), original.len());
        let ram = 8 << 20;
        let reduced_plan = xen_core::elf_loader::plan(&reduced, ram).expect("the hypervisor's loader accepts it");
        let original_plan = xen_core::elf_loader::plan(&original, ram).expect("and the original");
        assert_eq!(reduced_plan.entry, original_plan.entry);
        assert_eq!(reduced_plan.segments.len(), original_plan.segments.len());
    }
}
