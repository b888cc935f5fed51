//! Tiny domain kernels the control probe hands to `domctl` CREATE: complete
//! ELF64 images of a few hundred bytes, assembled at compile time by the
//! `const fn`s below (no build-order dependency on another kernel).
//!
//! Layout (both kinds): one file, loaded whole.
//!
//! ```text
//! file 0x00  ELF64 header (ET_EXEC, EM_X86_64, e_entry = 0x4010_0078, one program header)
//! file 0x40  the program header: PT_LOAD R+X, p_offset 0, p_vaddr 0x4010_0000,
//!            p_filesz = p_memsz = the file's length, p_align 0x1000
//! file 0x78  code (the entry point), then the message it prints
//! ```
//!
//! `tiny` prints `tiny: hello` (console_io WRITE), then shuts down with
//! reason poweroff (the `sched_shutdown` struct is a zero pushed on the
//! stack); should the hypervisor refuse, it yields forever. `tiny-spin`
//! prints `tiny: tick` forever, busy-waiting a number of TSC cycles
//! between lines (no yield: it relies on preemption), so pausing it shows
//! in the log. The stack is used only for the shutdown reason; nothing is
//! written elsewhere (the segment is read-only).

use xen_abi::hypercall::{console, CONSOLE_IO, SCHED_OP};
use xen_abi::layout::{IMAGE_OFFSET, PAGE_SIZE, RAM_BASE};
use xen_abi::sched::{ShutdownReason, SHUTDOWN, YIELD};

/// Where the image is loaded: the start of the load window.
pub const LOAD_ADDRESS: u64 = RAM_BASE + IMAGE_OFFSET;
/// Bytes of the ELF header.
const FILE_HEADER_BYTES: usize = 64;
/// Bytes of the one program header.
const PROGRAM_HEADER_BYTES: usize = 56;
/// File offset of the first instruction.
pub const CODE_OFFSET: usize = FILE_HEADER_BYTES + PROGRAM_HEADER_BYTES;
/// The entry point.
pub const ENTRY: u64 = LOAD_ADDRESS + CODE_OFFSET as u64;
/// Room for an image.
pub const CAPACITY: usize = 256;

/// What `tiny` prints.
pub const HELLO_MESSAGE: &[u8] = b"tiny: hello\n";
/// What `tiny-spin` prints, again and again.
pub const TICK_MESSAGE: &[u8] = b"tiny: tick\n";
/// `tiny-spin`'s default wait between lines, in TSC cycles (about 20-35 ms
/// at 2-3 GHz).
pub const DEFAULT_TICK_CYCLES: u32 = 64 << 20;

/// An assembled image: the first `length` bytes of `bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TinyImage {
    bytes: [u8; CAPACITY],
    length: usize,
}

impl TinyImage {
    /// The ELF file.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.length]
    }
}

/// A byte buffer with a cursor, usable in `const fn`s.
struct Assembler {
    bytes: [u8; CAPACITY],
    at: usize,
}

impl Assembler {
    const fn emit(&mut self, code: &[u8]) {
        let mut index = 0;
        while index < code.len() {
            self.bytes[self.at] = code[index];
            self.at += 1;
            index += 1;
        }
    }

    const fn put_le(&mut self, at: usize, value: u64, width: usize) {
        let mut index = 0;
        while index < width {
            self.bytes[at + index] = (value >> (8 * index)) as u8;
            index += 1;
        }
    }

    const fn emit_u32(&mut self, value: u32) {
        self.put_le(self.at, value as u64, 4);
        self.at += 4;
    }

    /// `mov r32, imm32` for the register numbered `register` (0 eax, 6 esi,
    /// 7 edi).
    const fn mov_imm32(&mut self, register: u8, value: u32) {
        self.emit(&[0xb8 + register]);
        self.emit_u32(value);
    }

    /// `lea rdx, [rip + message]`; returns where to patch the displacement.
    const fn lea_rdx(&mut self) -> usize {
        self.emit(&[0x48, 0x8d, 0x15, 0, 0, 0, 0]);
        self.at - 4
    }

    /// Points the `lea` displacement at `patch` to `target` (the next
    /// instruction follows the displacement).
    const fn patch_rel32(&mut self, patch: usize, target: usize) {
        let relative = target as i64 - (patch as i64 + 4);
        self.put_le(patch, relative as u32 as u64, 4);
    }

    /// A short jump (`opcode` rel8) back to `target`.
    const fn jump_back(&mut self, opcode: u8, target: usize) {
        let relative = target as i64 - (self.at as i64 + 2);
        assert!(relative >= -128, "short jump out of range");
        self.emit(&[opcode, relative as i8 as u8]);
    }

    /// `console_io(WRITE, length, rdx)`: rdx already holds the buffer.
    const fn console_write(&mut self, length: usize) {
        self.mov_imm32(6, length as u32); // mov esi, length
        self.mov_imm32(7, console::WRITE as u32); // mov edi, WRITE
        self.mov_imm32(0, CONSOLE_IO as u32); // mov eax, CONSOLE_IO
        self.emit(&[0x0f, 0x05]); // syscall
    }

    /// `rax = rdtsc` (clobbers rdx).
    const fn read_tsc(&mut self) {
        self.emit(&[0x0f, 0x31]); // rdtsc
        self.emit(&[0x48, 0xc1, 0xe2, 0x20]); // shl rdx, 32
        self.emit(&[0x48, 0x09, 0xd0]); // or rax, rdx
    }

    /// Writes the ELF and program headers for an image of `self.at` bytes.
    const fn finish(mut self) -> TinyImage {
        let length = self.at;
        self.emit_headers(length);
        TinyImage { bytes: self.bytes, length }
    }

    const fn emit_headers(&mut self, length: usize) {
        // e_ident: magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, System V.
        let identification = [0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        let mut index = 0;
        while index < identification.len() {
            self.bytes[index] = identification[index];
            index += 1;
        }
        self.put_le(16, 2, 2); // e_type ET_EXEC
        self.put_le(18, 62, 2); // e_machine EM_X86_64
        self.put_le(20, 1, 4); // e_version
        self.put_le(24, ENTRY, 8); // e_entry
        self.put_le(32, FILE_HEADER_BYTES as u64, 8); // e_phoff
        self.put_le(40, 0, 8); // e_shoff: no sections
        self.put_le(48, 0, 4); // e_flags
        self.put_le(52, FILE_HEADER_BYTES as u64, 2); // e_ehsize
        self.put_le(54, PROGRAM_HEADER_BYTES as u64, 2); // e_phentsize
        self.put_le(56, 1, 2); // e_phnum
        self.put_le(58, 64, 2); // e_shentsize
        self.put_le(60, 0, 2); // e_shnum
        self.put_le(62, 0, 2); // e_shstrndx
        let header = FILE_HEADER_BYTES;
        self.put_le(header, 1, 4); // p_type PT_LOAD
        self.put_le(header + 4, 4 | 1, 4); // p_flags R+X
        self.put_le(header + 8, 0, 8); // p_offset
        self.put_le(header + 16, LOAD_ADDRESS, 8); // p_vaddr
        self.put_le(header + 24, LOAD_ADDRESS, 8); // p_paddr
        self.put_le(header + 32, length as u64, 8); // p_filesz
        self.put_le(header + 40, length as u64, 8); // p_memsz
        self.put_le(header + 48, PAGE_SIZE, 8); // p_align
    }
}

const fn assembler() -> Assembler {
    Assembler { bytes: [0; CAPACITY], at: CODE_OFFSET }
}

/// `tiny`: print [`HELLO_MESSAGE`], power off.
pub const fn hello_image() -> TinyImage {
    let mut code = assembler();
    let message = code.lea_rdx();
    code.console_write(HELLO_MESSAGE.len());
    code.emit(&[0x6a, ShutdownReason::Poweroff as u8]); // push reason (a zeroed u64 for poweroff)
    code.emit(&[0x48, 0x89, 0xe6]); // mov rsi, rsp
    code.mov_imm32(7, SHUTDOWN as u32); // mov edi, SHUTDOWN
    code.mov_imm32(0, SCHED_OP as u32); // mov eax, SCHED_OP
    code.emit(&[0x0f, 0x05]); // syscall
    // Refused: yield forever.
    let refused = code.at;
    code.emit(&[0x31, 0xf6]); // xor esi, esi
    code.mov_imm32(7, YIELD as u32); // mov edi, YIELD
    code.mov_imm32(0, SCHED_OP as u32); // mov eax, SCHED_OP
    code.emit(&[0x0f, 0x05]); // syscall
    code.jump_back(0xeb, refused); // jmp refused
    let text = code.at;
    code.emit(HELLO_MESSAGE);
    code.patch_rel32(message, text);
    code.finish()
}

/// `tiny-spin`: print [`TICK_MESSAGE`], busy-wait `tick_cycles` TSC cycles
/// (at most `i32::MAX`: the compare takes a sign-extended immediate),
/// again, forever.
pub const fn spin_image(tick_cycles: u32) -> TinyImage {
    let cycles = if tick_cycles > i32::MAX as u32 { i32::MAX as u32 } else { tick_cycles };
    let mut code = assembler();
    let top = code.at;
    let message = code.lea_rdx();
    code.console_write(TICK_MESSAGE.len());
    code.read_tsc();
    code.emit(&[0x48, 0x89, 0xc3]); // mov rbx, rax (the start; syscall keeps rbx)
    let wait = code.at;
    code.emit(&[0xf3, 0x90]); // pause
    code.read_tsc();
    code.emit(&[0x48, 0x29, 0xd8]); // sub rax, rbx
    code.emit(&[0x48, 0x3d]); // cmp rax, imm32
    code.emit_u32(cycles);
    code.jump_back(0x72, wait); // jb wait
    code.jump_back(0xeb, top); // jmp top
    let text = code.at;
    code.emit(TICK_MESSAGE);
    code.patch_rel32(message, text);
    code.finish()
}

/// `tiny`, assembled at compile time.
pub const TINY_HELLO: TinyImage = hello_image();
/// `tiny-spin` with [`DEFAULT_TICK_CYCLES`], assembled at compile time (the
/// control script assembles its own, with `tick_cycles=`).
#[cfg(test)]
pub const TINY_SPIN: TinyImage = spin_image(DEFAULT_TICK_CYCLES);

#[cfg(test)]
mod tests {
    use super::*;
    use xen_core::elf_loader;

    const FOUR_MIB: u64 = 4 << 20;

    fn u32_at(image: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(image[at..at + 4].try_into().unwrap())
    }

    /// The buffer the `lea rdx, [rip + x]` at the entry point names, with
    /// the length the following `mov esi` gives.
    fn printed(image: &[u8], lea: usize) -> &[u8] {
        assert_eq!(&image[lea..lea + 3], &[0x48, 0x8d, 0x15]);
        let displacement = u32_at(image, lea + 3) as i32;
        let start = (lea as i64 + 7 + i64::from(displacement)) as usize;
        assert_eq!(image[lea + 7], 0xbe, "mov esi, length");
        let length = u32_at(image, lea + 8) as usize;
        &image[start..start + length]
    }

    #[test]
    fn both_images_load() {
        for image in [TINY_HELLO, TINY_SPIN, spin_image(1), spin_image(u32::MAX)] {
            let bytes = image.as_bytes();
            let plan = elf_loader::plan(bytes, FOUR_MIB).unwrap();
            assert_eq!(plan.entry, ENTRY);
            assert_eq!(plan.segments.len(), 1);
            let segment = plan.segments[0];
            assert_eq!(segment.guest_address, LOAD_ADDRESS);
            assert_eq!((segment.file_offset, segment.file_size, segment.memory_size), (0, bytes.len() as u64, bytes.len() as u64));
            assert!(segment.executable && !segment.writable);
            assert_eq!(plan.image_end, LOAD_ADDRESS + PAGE_SIZE);
            // Also in a 2 MiB domain (1 MiB has no room past the first MiB).
            assert!(elf_loader::plan(bytes, 2 << 20).is_ok());
        }
    }

    #[test]
    fn the_code_prints_its_message() {
        let hello = TINY_HELLO;
        assert_eq!(printed(hello.as_bytes(), CODE_OFFSET), HELLO_MESSAGE);
        assert!(hello.as_bytes().ends_with(HELLO_MESSAGE));
        let spin = TINY_SPIN;
        assert_eq!(printed(spin.as_bytes(), CODE_OFFSET), TICK_MESSAGE);
        assert!(spin.as_bytes().ends_with(TICK_MESSAGE));
    }

    #[test]
    fn hello_shuts_down_with_poweroff() {
        let bytes = TINY_HELLO.as_bytes();
        // After the console write: push 0; mov rsi, rsp; mov edi, 2; mov eax, 29; syscall.
        let after_write = CODE_OFFSET + 7 + 5 + 5 + 5 + 2;
        assert_eq!(&bytes[after_write..after_write + 2], &[0x6a, 0x00]);
        assert_eq!(&bytes[after_write + 2..after_write + 5], &[0x48, 0x89, 0xe6]);
        assert_eq!(bytes[after_write + 5], 0xbf);
        assert_eq!(u32_at(bytes, after_write + 6), 2);
        assert_eq!(bytes[after_write + 10], 0xb8);
        assert_eq!(u32_at(bytes, after_write + 11), 29);
        assert_eq!(&bytes[after_write + 15..after_write + 17], &[0x0f, 0x05]);
    }

    #[test]
    fn spin_delay_is_patched_in() {
        let bytes = spin_image(12_345);
        let bytes = bytes.as_bytes();
        let compare = bytes.windows(2).position(|pair| pair == [0x48, 0x3d]).unwrap();
        assert_eq!(u32_at(bytes, compare + 2), 12_345);
        let clamped = spin_image(u32::MAX);
        let clamped = clamped.as_bytes();
        assert_eq!(u32_at(clamped, compare + 2), i32::MAX as u32);
        assert!(bytes.len() < CAPACITY && TINY_HELLO.as_bytes().len() < CAPACITY);
    }
}
