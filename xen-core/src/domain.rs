//! A domain: its memory (the pseudo-physical-to-machine map), the address
//! space the hypervisor built for it, its saved registers and vector state,
//! its console. Building and tearing down are safe logic over
//! [`MachineMemory`], so they are tested on the host against fake memory.

use alloc::boxed::Box;
use alloc::vec::Vec;

use xen_abi::layout::{self, PAGE_SIZE, RAM_BASE};
use xen_abi::sched::ShutdownReason;
use xen_abi::start_info::{self, fill_text, StartInfo};
use xen_abi::{DomId, GuestAddress};

use crate::elf_loader::{self, ElfError, LoadPlan};
use crate::event_channel::EventChannels;
use crate::grant_table::{ActiveGrants, Maptrack};
use crate::frame_allocator::Frame;
use crate::guest_console::GuestConsole;
use crate::page_table::{flags, AddressSpace, MapError, TableMemory, PAGE_4K};
use crate::trap::TrapFrame;

/// The selectors a domain runs with (ring 3), as the GDT defines them.
pub const USER_CODE_SELECTOR: u64 = 0x20 | 3;
/// The data/stack selector of ring 3.
pub const USER_DATA_SELECTOR: u64 = 0x18 | 3;

/// Physical memory as the domain builder needs it.
pub trait MachineMemory: TableMemory {
    /// A zeroed frame, or `None` when memory is exhausted.
    fn allocate_frame(&mut self) -> Option<Frame>;
    /// Scrubs a frame and returns it to the allocator.
    fn free_frame(&mut self, frame: Frame);
    /// Frames free now.
    fn free_frame_count(&self) -> u64;
    /// Copies bytes out of a frame.
    fn read(&self, frame: Frame, offset: usize, out: &mut [u8]);
    /// Copies bytes into a frame.
    fn write(&mut self, frame: Frame, offset: usize, data: &[u8]);
}

/// A page of the hypervisor that every domain's tables map (supervisor
/// only): the entry trampoline, descriptor tables, per-CPU entry area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HypervisorMapping {
    /// Virtual address (the same in every address space).
    pub virtual_address: u64,
    /// Machine address.
    pub physical_address: u64,
    /// Leaf flags (never USER).
    pub flags: u64,
}

/// What the launch description says about a domain.
#[derive(Clone, Copy, Debug)]
pub struct DomainSpec<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its security label.
    pub seclabel: &'a str,
    /// Bytes of RAM (a multiple of the page size).
    pub memory_bytes: u64,
    /// `start_info::flags` bits.
    pub flags: u32,
    /// Its command line.
    pub command_line: &'a str,
}

/// A domain's FXSAVE image: SSE state, switched eagerly with the domain.
#[derive(Clone)]
#[repr(C, align(16))]
pub struct VectorState(pub [u8; 512]);

impl Default for VectorState {
    /// The state after `fninit` with default MXCSR: what a new domain sees,
    /// so it never inherits another domain's registers.
    fn default() -> Self {
        let mut image = [0u8; 512];
        image[0..2].copy_from_slice(&0x037fu16.to_le_bytes()); // FCW
        image[24..28].copy_from_slice(&0x1f80u32.to_le_bytes()); // MXCSR
        VectorState(image)
    }
}

/// Why a domain could not be built. Nothing is left allocated.
#[derive(Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The kernel image was refused.
    Image(ElfError),
    /// Its memory size is not a page multiple or outside the limits.
    BadMemorySize(u64),
    /// Not enough free frames.
    OutOfMemory {
        /// Frames needed (RAM plus an estimate for page tables).
        needed_frames: u64,
        /// Frames free.
        free_frames: u64,
    },
    /// A mapping could not be made.
    Map(MapError),
    /// The hypervisor's own grant limits are out of range (a build bug).
    Limits,
    /// The domain table is full.
    TooManyDomains,
    /// The command line holds a NUL or does not fit the start-info field
    /// (with its NUL): the domain would see another line than the one asked.
    BadCommandLine,
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BuildError::Image(error) => write!(f, "kernel image refused: {error}"),
            BuildError::BadMemorySize(bytes) => write!(
                f,
                "memory of {bytes} bytes is not a multiple of 4 KiB in [{} KiB, {} MiB]",
                layout::MIN_RAM_BYTES >> 10,
                layout::MAX_RAM_BYTES >> 20
            ),
            BuildError::OutOfMemory { needed_frames, free_frames } => write!(
                f,
                "does not fit in memory: needs {needed_frames} frames, {free_frames} free"
            ),
            BuildError::Map(error) => write!(f, "mapping failed: {error}"),
            BuildError::Limits => write!(f, "grant-table limits out of range"),
            BuildError::TooManyDomains => write!(f, "the domain table is full"),
            BuildError::BadCommandLine => write!(
                f,
                "the command line holds a NUL or is longer than {} bytes",
                start_info::COMMAND_LINE_BYTES - 1
            ),
        }
    }
}

/// A guest address range that is not the domain's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestFault {
    /// The address the domain handed in.
    pub address: u64,
    /// The length asked for.
    pub length: u64,
}

/// What teardown gave back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Teardown {
    /// RAM frames scrubbed and freed.
    pub ram_frames: u64,
    /// Page-table frames scrubbed and freed.
    pub table_frames: u64,
}

/// One domain.
pub struct Domain {
    /// Its id.
    pub id: DomId,
    /// Its name.
    pub name: heapless::String<31>,
    /// Its security label.
    pub seclabel: heapless::String<63>,
    /// `start_info::flags` bits.
    pub flags: u32,
    /// Why it shut down (or crashed), once it has: it is then waiting to be
    /// torn down. Whether it runs, blocks or is paused is the scheduler's.
    pub shutdown: Option<ShutdownReason>,
    /// Pseudo-physical frame N lives in machine frame `p2m[N]`.
    pub p2m: Vec<Frame>,
    /// Its page tables.
    pub space: AddressSpace,
    /// Its registers while it is not running.
    pub registers: TrapFrame,
    /// Its SSE state while it is not running.
    pub vector_state: Box<VectorState>,
    /// Its console.
    pub console: GuestConsole,
    /// Hypercalls made.
    pub hypercalls: u64,
    /// RAM frames already returned by [`Domain::release_some`].
    pub released_frames: u64,
    /// Its scheduler weight (0: default).
    pub weight: u32,
    /// System time when it was built.
    pub created_ns: u64,
    /// Whether it has written to its console yet.
    pub has_written: bool,
    /// Its event-channel ports.
    pub events: EventChannels,
    /// Foreign grants it has mapped (the mapper's side).
    pub maptrack: Maptrack,
    /// Its own grants in use by others (the granter's side).
    pub active_grants: ActiveGrants,
    /// Frames teardown kept back because another domain still maps them.
    pub held_frames: Vec<Frame>,
    /// Device calls refused because it owns no device (only the first is
    /// logged: any domain can make them as fast as it likes).
    pub device_calls_refused: u64,
}

/// Foreign grants a domain may map at once.
pub const MAPTRACK_ENTRIES: u32 = 1024;
/// Grant entries of a domain's table (one page of v1 entries).
pub const GRANT_ENTRIES: u32 = (xen_abi::grant_table::ENTRIES_PER_PAGE as u64 * layout::GRANT_TABLE_PAGES) as u32;

/// The id for a new domain: the first from `next` on that `in_use` does
/// not claim, counting 1, 2, ... up to [`DomId::FIRST_RESERVED`] and then
/// from 1 again (0 is never handed out). `in_use` must claim every live
/// domain and every dead granter whose frames others still map: two domains
/// with one id would share each other's policy label, grants and event
/// channels. `None` if every id is claimed.
pub fn free_domain_id(next: u16, in_use: impl Fn(DomId) -> bool) -> Option<DomId> {
    let span = DomId::FIRST_RESERVED.0 - 1;
    let start = if (1..DomId::FIRST_RESERVED.0).contains(&next) { next } else { 1 };
    (0..span).map(|step| DomId(1 + (start - 1 + step) % span)).find(|id| !in_use(*id))
}

/// Leaf flags for a page of domain RAM.
fn ram_page_flags(pfn: u64, plan: &LoadPlan) -> u64 {
    let address = layout::pfn_to_address(pfn);
    if pfn == layout::START_INFO_PFN {
        return flags::USER | flags::NO_EXECUTE;
    }
    for segment in &plan.segments {
        let start = segment.guest_address & !(PAGE_SIZE - 1);
        let end = (segment.guest_address + segment.memory_size).next_multiple_of(PAGE_SIZE);
        if address >= start && address < end {
            let mut leaf = flags::USER;
            if segment.writable {
                leaf |= flags::WRITABLE;
            }
            if !segment.executable {
                leaf |= flags::NO_EXECUTE;
            }
            return leaf;
        }
    }
    flags::USER | flags::WRITABLE | flags::NO_EXECUTE
}

impl Domain {
    /// Builds a domain from its spec and kernel image. On any error every
    /// frame taken so far is returned.
    pub fn build(
        machine: &mut impl MachineMemory,
        id: DomId,
        spec: &DomainSpec<'_>,
        image: &[u8],
        hypervisor_mappings: &[HypervisorMapping],
        now_ns: u64,
    ) -> Result<Box<Domain>, BuildError> {
        if spec.command_line.contains('\0') || spec.command_line.len() >= start_info::COMMAND_LINE_BYTES {
            return Err(BuildError::BadCommandLine);
        }
        let memory = spec.memory_bytes;
        if memory % PAGE_SIZE != 0 || !(layout::MIN_RAM_BYTES..=layout::MAX_RAM_BYTES).contains(&memory) {
            return Err(BuildError::BadMemorySize(memory));
        }
        let plan = elf_loader::plan(image, memory).map_err(BuildError::Image)?;
        let maptrack = Maptrack::new(MAPTRACK_ENTRIES).ok_or(BuildError::Limits)?;
        let active_grants = ActiveGrants::new(GRANT_ENTRIES).ok_or(BuildError::Limits)?;
        let nr_pages = memory / PAGE_SIZE;
        let needed_frames = nr_pages + nr_pages / 512 + 16 + hypervisor_mappings.len() as u64 / 512;
        let free_frames = machine.free_frame_count();
        if needed_frames > free_frames {
            return Err(BuildError::OutOfMemory { needed_frames, free_frames });
        }
        let mut p2m = Vec::with_capacity(nr_pages as usize);
        for _ in 0..nr_pages {
            match machine.allocate_frame() {
                Some(frame) => p2m.push(frame),
                None => {
                    for frame in p2m {
                        machine.free_frame(frame);
                    }
                    return Err(BuildError::OutOfMemory { needed_frames, free_frames });
                }
            }
        }
        let space = match AddressSpace::new(machine) {
            Ok(space) => space,
            Err(error) => {
                for frame in p2m {
                    machine.free_frame(frame);
                }
                return Err(BuildError::Map(error));
            }
        };
        let mut domain = Box::new(Domain {
            id,
            name: heapless::String::new(),
            seclabel: heapless::String::new(),
            flags: spec.flags,
            shutdown: None,
            p2m,
            space,
            registers: TrapFrame::default(),
            vector_state: Box::default(),
            console: GuestConsole::new(id.0, now_ns),
            hypercalls: 0,
            released_frames: 0,
            weight: 0,
            created_ns: now_ns,
            has_written: false,
            events: EventChannels::new(id),
            maptrack,
            active_grants,
            held_frames: Vec::new(),
            device_calls_refused: 0,
        });
        let _ = domain.name.push_str(spec.name.get(..spec.name.len().min(31)).unwrap_or(""));
        let _ = domain.seclabel.push_str(spec.seclabel.get(..spec.seclabel.len().min(63)).unwrap_or(""));
        if let Err(error) = domain.populate(machine, spec, image, &plan, hypervisor_mappings) {
            domain.destroy(machine);
            return Err(BuildError::Map(error));
        }
        Ok(domain)
    }

    fn populate(
        &mut self,
        machine: &mut impl MachineMemory,
        spec: &DomainSpec<'_>,
        image: &[u8],
        plan: &LoadPlan,
        hypervisor_mappings: &[HypervisorMapping],
    ) -> Result<(), MapError> {
        for (pfn, frame) in self.p2m.iter().enumerate() {
            let pfn = pfn as u64;
            let leaf = ram_page_flags(pfn, plan);
            self.space.map(machine, layout::pfn_to_address(pfn), frame.address(), PAGE_4K, leaf)?;
        }
        for mapping in hypervisor_mappings {
            self.space.map(machine, mapping.virtual_address, mapping.physical_address, PAGE_4K, mapping.flags & !flags::USER)?;
        }
        for segment in &plan.segments {
            let start = segment.file_offset as usize;
            let bytes = image.get(start..start + segment.file_size as usize).unwrap_or(&[]);
            // The plan checked the range lies in RAM: these writes cannot fail.
            let _ = self.write_guest(machine, segment.guest_address, bytes);
        }
        let info = StartInfo {
            nr_pages: self.p2m.len() as u64,
            shared_info: layout::pfn_to_address(layout::SHARED_INFO_PFN),
            flags: spec.flags,
            domid: self.id.0,
            store_pfn: layout::STORE_PFN,
            store_evtchn: 0,
            console_pfn: layout::CONSOLE_PFN,
            console_evtchn: 0,
            first_free_pfn: (plan.image_end - RAM_BASE).div_ceil(PAGE_SIZE),
            stack_pages: layout::STACK_BYTES / PAGE_SIZE,
            name: fill_text(spec.name),
            seclabel: fill_text(spec.seclabel),
            command_line: fill_text(spec.command_line),
        };
        let mut page = [0u8; start_info::SIZE];
        info.encode(&mut page);
        machine.write(self.p2m[layout::START_INFO_PFN as usize], 0, &page);
        self.registers = TrapFrame {
            rip: plan.entry,
            cs: USER_CODE_SELECTOR,
            rflags: layout::INITIAL_RFLAGS,
            rsp: RAM_BASE + self.p2m.len() as u64 * PAGE_SIZE,
            ss: USER_DATA_SELECTOR,
            rdi: layout::pfn_to_address(layout::START_INFO_PFN),
            ..TrapFrame::default()
        };
        Ok(())
    }

    /// Pages of RAM.
    pub fn nr_pages(&self) -> u64 {
        self.p2m.len() as u64
    }

    /// The machine frame behind one of its pseudo-physical frames.
    pub fn frame(&self, pfn: u64) -> Option<Frame> {
        self.p2m.get(usize::try_from(pfn).ok()?).copied()
    }

    /// Checks that `[address, address + length)` is this domain's RAM.
    fn check_range(&self, address: u64, length: u64) -> Result<(), GuestFault> {
        if length == 0 {
            return Ok(());
        }
        let fault = GuestFault { address, length };
        let end = address.checked_add(length).ok_or(fault)?;
        let ram_end = RAM_BASE + self.nr_pages() * PAGE_SIZE;
        if address < RAM_BASE || end > ram_end {
            return Err(fault);
        }
        Ok(())
    }

    /// Copies from the domain's memory through the pseudo-physical-to-machine
    /// map (never through a guest virtual address).
    pub fn copy_from_guest(&self, machine: &impl MachineMemory, address: GuestAddress, out: &mut [u8]) -> Result<(), GuestFault> {
        self.check_range(address.0, out.len() as u64)?;
        let mut done = 0usize;
        while done < out.len() {
            let at = address.0 + done as u64 - RAM_BASE;
            let offset = (at % PAGE_SIZE) as usize;
            let chunk = (PAGE_SIZE as usize - offset).min(out.len() - done);
            machine.read(self.p2m[(at / PAGE_SIZE) as usize], offset, &mut out[done..done + chunk]);
            done += chunk;
        }
        Ok(())
    }

    /// Copies into the domain's memory through the pseudo-physical-to-machine map.
    pub fn write_guest(&self, machine: &mut impl MachineMemory, address: u64, data: &[u8]) -> Result<(), GuestFault> {
        self.check_range(address, data.len() as u64)?;
        let mut done = 0usize;
        while done < data.len() {
            let at = address + done as u64 - RAM_BASE;
            let offset = (at % PAGE_SIZE) as usize;
            let chunk = (PAGE_SIZE as usize - offset).min(data.len() - done);
            machine.write(self.p2m[(at / PAGE_SIZE) as usize], offset, &data[done..done + chunk]);
            done += chunk;
        }
        Ok(())
    }

    /// Returns up to `budget` RAM frames, scrubbed (teardown in bounded
    /// steps, so destroying a large domain never stalls the others). True
    /// when no RAM is left; the page tables go with [`Domain::destroy`].
    /// Frames another domain still maps (granted and pinned) are not freed
    /// but kept in `held_frames` until their last unmap.
    pub fn release_some(&mut self, machine: &mut impl MachineMemory, budget: usize) -> bool {
        // One scan of the grant table per step, not one per frame (a 4 MiB
        // domain's teardown scanned it a thousand times: millions of
        // instructions with the hypervisor's lock held).
        let pinned = self.active_grants.pinned_frames();
        for _ in 0..budget {
            match self.p2m.pop() {
                Some(frame) if pinned.binary_search(&frame).is_ok() => self.held_frames.push(frame),
                Some(frame) => {
                    machine.free_frame(frame);
                    self.released_frames += 1;
                }
                None => return true,
            }
        }
        self.p2m.is_empty()
    }

    /// Teardown's end, before the held frames go to an orphan: frees
    /// (scrubbed) the held frames whose last pin was released while the
    /// teardown ran (their mapper unmapped between two steps), keeping only
    /// those still pinned. An orphan's frame is freed only at a release of
    /// one of its pins; a frame with none left would never be, and its
    /// orphan would hold one of the few orphan slots for ever. Returns how
    /// many were freed.
    pub fn free_unpinned_held_frames(&mut self, machine: &mut impl MachineMemory) -> u64 {
        let mut freed = 0;
        let pinned = self.active_grants.pinned_frames();
        self.held_frames.retain(|&frame| {
            if pinned.binary_search(&frame).is_ok() {
                return true;
            }
            machine.free_frame(frame);
            freed += 1;
            false
        });
        self.released_frames += freed;
        freed
    }

    /// Returns every frame the domain still holds, scrubbed: its RAM and its
    /// page tables. Its heap bytes go when the box is dropped.
    pub fn destroy(self: Box<Self>, machine: &mut impl MachineMemory) -> Teardown {
        let domain = *self;
        let ram_frames = domain.p2m.len() as u64 + domain.released_frames;
        for frame in domain.p2m {
            machine.free_frame(frame);
        }
        // Held frames were handed over to the caller (see `release_some`).
        let mut tables: Vec<Frame> = Vec::new();
        domain.space.free_tables(machine, &mut |frame| tables.push(frame));
        let table_frames = tables.len() as u64;
        for frame in tables {
            machine.free_frame(frame);
        }
        Teardown { ram_frames, table_frames }
    }
}

#[cfg(test)]
pub(crate) mod tests;
