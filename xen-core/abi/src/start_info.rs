//! The start-info page: what a domain learns about itself at boot. It sits
//! at pseudo-physical frame [`crate::layout::START_INFO_PFN`], read-only, and
//! its address is in `rdi` at the first instruction.
//!
//! This differs from Xen's PV `start_info` (1168 bytes, with page-table
//! fields our domains do not have); the field names are Xen's where the
//! meaning is.

use crate::bytes::{get_u16, get_u32, get_u64, put};

/// The magic at offset 0: `"xen-core-1.0-x86_64"`, NUL-padded to 32 bytes.
pub const MAGIC: &[u8] = b"xen-core-1.0-x86_64";
/// Bytes of the command line field (NUL-terminated inside it).
pub const COMMAND_LINE_BYTES: usize = 1024;
/// Bytes of the whole structure.
pub const SIZE: usize = 2048;

/// Field offsets.
pub mod offset {
    /// `magic[32]`.
    pub const MAGIC: usize = 0;
    /// `nr_pages` u64: pages of RAM.
    pub const NR_PAGES: usize = 32;
    /// `shared_info` u64: guest address of the shared-info page.
    pub const SHARED_INFO: usize = 40;
    /// `flags` u32.
    pub const FLAGS: usize = 48;
    /// `domid` u16.
    pub const DOMID: usize = 52;
    /// `store_pfn` u64.
    pub const STORE_PFN: usize = 56;
    /// `store_evtchn` u32.
    pub const STORE_EVTCHN: usize = 64;
    /// `console_pfn` u64.
    pub const CONSOLE_PFN: usize = 72;
    /// `console_evtchn` u32.
    pub const CONSOLE_EVTCHN: usize = 80;
    /// `first_free_pfn` u64: the first frame after the loaded image.
    pub const FIRST_FREE_PFN: usize = 88;
    /// `stack_pages` u64: pages at the top of RAM reserved for the stack.
    pub const STACK_PAGES: usize = 96;
    /// `name[32]`: the domain's name, NUL-padded.
    pub const NAME: usize = 104;
    /// `seclabel[64]`: the domain's security label, NUL-padded.
    pub const SECLABEL: usize = 136;
    /// `cmd_line[1024]`.
    pub const COMMAND_LINE: usize = 1024;
}

/// `flags` bits.
pub mod flags {
    /// This is the control domain.
    pub const CONTROL_DOMAIN: u32 = 1 << 0;
    /// This is a driver domain.
    pub const DRIVER_DOMAIN: u32 = 1 << 1;
}

// The layout fits in its page and its fields do not overlap: checked when
// the crate compiles.
const _: () = assert!(offset::SECLABEL + 64 <= offset::COMMAND_LINE);
const _: () = assert!(offset::COMMAND_LINE + COMMAND_LINE_BYTES == SIZE);
const _: () = assert!(SIZE <= 4096);

/// The decoded start-info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartInfo {
    /// Pages of RAM.
    pub nr_pages: u64,
    /// Guest address of the shared-info page.
    pub shared_info: u64,
    /// [`flags`] bits.
    pub flags: u32,
    /// The domain's id.
    pub domid: u16,
    /// Frame of the store ring.
    pub store_pfn: u64,
    /// Event channel of the store ring (0 until there is a store).
    pub store_evtchn: u32,
    /// Frame of the console ring.
    pub console_pfn: u64,
    /// Event channel of the console ring (0 until bound).
    pub console_evtchn: u32,
    /// First frame after the loaded image: the heap may start here.
    pub first_free_pfn: u64,
    /// Pages at the top of RAM kept for the stack.
    pub stack_pages: u64,
    /// The domain's name (NUL-padded).
    pub name: [u8; 32],
    /// The domain's label (NUL-padded).
    pub seclabel: [u8; 64],
    /// The command line (NUL-terminated).
    pub command_line: [u8; COMMAND_LINE_BYTES],
}

fn text(bytes: &[u8]) -> &str {
    let end = bytes.iter().position(|&byte| byte == 0).unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..end]).unwrap_or("")
}

/// Copies `value` into a NUL-padded field, cutting it (at a character
/// boundary) so at least one NUL remains.
pub fn fill_text<const N: usize>(value: &str) -> [u8; N] {
    let mut field = [0u8; N];
    let mut end = value.len().min(N.saturating_sub(1));
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    field[..end].copy_from_slice(&value.as_bytes()[..end]);
    field
}

impl StartInfo {
    /// The name as text.
    pub fn name(&self) -> &str {
        text(&self.name)
    }
    /// The label as text.
    pub fn seclabel(&self) -> &str {
        text(&self.seclabel)
    }
    /// The command line as text (empty if not UTF-8).
    pub fn command_line(&self) -> &str {
        text(&self.command_line)
    }

    /// Encodes into the page's first [`SIZE`] bytes.
    pub fn encode(&self, page: &mut [u8; SIZE]) {
        page.fill(0);
        put(page, offset::MAGIC, MAGIC);
        put(page, offset::NR_PAGES, &self.nr_pages.to_le_bytes());
        put(page, offset::SHARED_INFO, &self.shared_info.to_le_bytes());
        put(page, offset::FLAGS, &self.flags.to_le_bytes());
        put(page, offset::DOMID, &self.domid.to_le_bytes());
        put(page, offset::STORE_PFN, &self.store_pfn.to_le_bytes());
        put(page, offset::STORE_EVTCHN, &self.store_evtchn.to_le_bytes());
        put(page, offset::CONSOLE_PFN, &self.console_pfn.to_le_bytes());
        put(page, offset::CONSOLE_EVTCHN, &self.console_evtchn.to_le_bytes());
        put(page, offset::FIRST_FREE_PFN, &self.first_free_pfn.to_le_bytes());
        put(page, offset::STACK_PAGES, &self.stack_pages.to_le_bytes());
        put(page, offset::NAME, &self.name);
        put(page, offset::SECLABEL, &self.seclabel);
        put(page, offset::COMMAND_LINE, &self.command_line);
        // The command line always ends with a NUL.
        page[SIZE - 1] = 0;
    }

    /// Decodes, checking the magic; `None` if it is not a start-info page.
    pub fn decode(page: &[u8]) -> Option<StartInfo> {
        if page.get(..MAGIC.len())? != MAGIC {
            return None;
        }
        let array = |at: usize, length: usize| page.get(at..at + length);
        let mut name = [0u8; 32];
        name.copy_from_slice(array(offset::NAME, 32)?);
        let mut seclabel = [0u8; 64];
        seclabel.copy_from_slice(array(offset::SECLABEL, 64)?);
        let mut command_line = [0u8; COMMAND_LINE_BYTES];
        command_line.copy_from_slice(array(offset::COMMAND_LINE, COMMAND_LINE_BYTES)?);
        Some(StartInfo {
            nr_pages: get_u64(page, offset::NR_PAGES)?,
            shared_info: get_u64(page, offset::SHARED_INFO)?,
            flags: get_u32(page, offset::FLAGS)?,
            domid: get_u16(page, offset::DOMID)?,
            store_pfn: get_u64(page, offset::STORE_PFN)?,
            store_evtchn: get_u32(page, offset::STORE_EVTCHN)?,
            console_pfn: get_u64(page, offset::CONSOLE_PFN)?,
            console_evtchn: get_u32(page, offset::CONSOLE_EVTCHN)?,
            first_free_pfn: get_u64(page, offset::FIRST_FREE_PFN)?,
            stack_pages: get_u64(page, offset::STACK_PAGES)?,
            name,
            seclabel,
            command_line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_magic() {
        let info = StartInfo {
            nr_pages: 4096,
            shared_info: 0x4000_1000,
            flags: flags::CONTROL_DOMAIN,
            domid: 3,
            store_pfn: 3,
            store_evtchn: 1,
            console_pfn: 2,
            console_evtchn: 2,
            first_free_pfn: 300,
            stack_pages: 16,
            name: fill_text("banking"),
            seclabel: fill_text("system_u:system_r:banking_t"),
            command_line: fill_text("action=hello loops=3"),
        };
        let mut page = [0xffu8; SIZE];
        info.encode(&mut page);
        assert_eq!(&page[..MAGIC.len()], MAGIC);
        assert_eq!(page[MAGIC.len()], 0);
        let decoded = StartInfo::decode(&page).unwrap();
        assert_eq!(decoded, info);
        assert_eq!(decoded.name(), "banking");
        assert_eq!(decoded.command_line(), "action=hello loops=3");
        page[0] = b'X';
        assert_eq!(StartInfo::decode(&page), None);
        assert_eq!(StartInfo::decode(&page[..10]), None);
    }

    #[test]
    fn long_text_is_cut_with_a_terminator() {
        let field: [u8; 8] = fill_text("abcdefghijkl");
        assert_eq!(&field, b"abcdefg\0");
        let field: [u8; 4] = fill_text("aé€");
        assert_eq!(text(&field), "aé");
    }

}
