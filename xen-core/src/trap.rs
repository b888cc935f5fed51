//! What the CPU and the entry stubs save on an interrupt or exception, and
//! how a fatal one is reported: vector and name, error code (decoded for a
//! page fault), RIP, CR2 and every register.

use core::fmt;

/// The register state saved by the trap entry stub, lowest address first.
/// The layout is shared with the assembly in `arch/traps.rs`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
#[allow(missing_docs)] // reason: the fields are the x86-64 registers, named as the SDM names them
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// The vector the stub pushed.
    pub vector: u64,
    /// The CPU's error code, or 0 for vectors without one.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// The vector of a page fault.
pub const PAGE_FAULT: u64 = 14;

impl TrapFrame {
    /// Whether the trap came from ring 3 (a domain).
    pub fn from_user(&self) -> bool {
        self.cs & 3 == 3
    }
}

/// The architectural name of an exception vector.
pub fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 error",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD error",
        20 => "#VE virtualization",
        21 => "#CP control protection",
        9 | 15 | 22..=31 => "reserved exception",
        _ => "interrupt",
    }
}

/// A page fault's error code in words.
pub struct PageFaultReason(pub u64);

impl fmt::Display for PageFaultReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.0;
        let bit = |n: u32| code & (1 << n) != 0;
        write!(
            f,
            "{} {} in {} mode",
            if bit(0) { "protection violation" } else { "not present" },
            if bit(4) {
                "on instruction fetch"
            } else if bit(1) {
                "on write"
            } else {
                "on read"
            },
            if bit(2) { "user" } else { "supervisor" },
        )?;
        if bit(3) {
            write!(f, ", reserved bit set")?;
        }
        if bit(5) {
            write!(f, ", protection key")?;
        }
        Ok(())
    }
}

/// The full report of a fatal trap, as printed on the console.
pub struct FatalReport<'a> {
    /// Who stopped: `FATAL TRAP` for the hypervisor, `d3 (probe) crashed` for a domain.
    pub subject: &'a str,
    /// The saved state.
    pub frame: &'a TrapFrame,
    /// CR2 at the time of the trap.
    pub cr2: u64,
}

impl fmt::Display for FatalReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frame = self.frame;
        writeln!(
            f,
            "{}: vector {} ({}), error code {:#06x}",
            self.subject,
            frame.vector,
            exception_name(frame.vector),
            frame.error_code
        )?;
        if frame.vector == PAGE_FAULT {
            writeln!(f, "  page fault: {}", PageFaultReason(frame.error_code))?;
        }
        writeln!(
            f,
            "  RIP {:#018x}  CS {:#06x}  RFLAGS {:#018x}  CPL {}",
            frame.rip,
            frame.cs,
            frame.rflags,
            frame.cs & 3
        )?;
        writeln!(f, "  RSP {:#018x}  SS {:#06x}  CR2 {:#018x}", frame.rsp, frame.ss, self.cr2)?;
        let registers = [
            ("RAX", frame.rax),
            ("RBX", frame.rbx),
            ("RCX", frame.rcx),
            ("RDX", frame.rdx),
            ("RSI", frame.rsi),
            ("RDI", frame.rdi),
            ("RBP", frame.rbp),
            ("R8 ", frame.r8),
            ("R9 ", frame.r9),
            ("R10", frame.r10),
            ("R11", frame.r11),
            ("R12", frame.r12),
            ("R13", frame.r13),
            ("R14", frame.r14),
            ("R15", frame.r15),
        ];
        for row in registers.chunks(3) {
            write!(f, " ")?;
            for (name, value) in row {
                write!(f, " {name} {value:#018x}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_layout_matches_the_stub() {
        assert_eq!(core::mem::size_of::<TrapFrame>(), 22 * 8);
        assert_eq!(core::mem::offset_of!(TrapFrame, vector), 15 * 8);
        assert_eq!(core::mem::offset_of!(TrapFrame, rip), 17 * 8);
        assert_eq!(core::mem::offset_of!(TrapFrame, ss), 21 * 8);
    }

    #[test]
    fn page_fault_reasons() {
        assert_eq!(PageFaultReason(0).to_string(), "not present on read in supervisor mode");
        assert_eq!(PageFaultReason(0b11).to_string(), "protection violation on write in supervisor mode");
        assert_eq!(PageFaultReason(0b10101).to_string(), "protection violation on instruction fetch in user mode");
        assert_eq!(PageFaultReason(0b1000).to_string(), "not present on read in supervisor mode, reserved bit set");
    }

    #[test]
    fn report_names_vector_error_rip_cr2_and_registers() {
        let frame = TrapFrame { vector: 14, error_code: 0, rip: 0xffff_ffff_8010_2345, cs: 8, rax: 0xabc, r15: 0x15, ..TrapFrame::default() };
        let text = FatalReport { subject: "FATAL TRAP", frame: &frame, cr2: 0xdead_0000 }.to_string();
        assert!(text.starts_with("FATAL TRAP: "));
        assert!(text.contains("vector 14 (#PF page fault), error code 0x0000"), "{text}");
        assert!(text.contains("not present on read in supervisor mode"));
        assert!(text.contains("RIP 0xffffffff80102345"));
        assert!(text.contains("CR2 0x00000000dead0000"));
        assert!(text.contains("RAX 0x0000000000000abc"));
        assert!(text.contains("R15 0x0000000000000015"));
        assert!(!frame.from_user());
    }

    #[test]
    fn names_cover_every_vector() {
        assert_eq!(exception_name(8), "#DF double fault");
        assert_eq!(exception_name(9), "reserved exception");
        assert_eq!(exception_name(32), "interrupt");
    }
}
