//! The way in: the multiboot1 header (with the a.out kludge, so QEMU's
//! `-kernel` and GRUB both load this ELF64), the 32-bit entry code that turns
//! on long mode with a temporary identity + higher-half map, the boot stacks
//! (the boot stack and CPU 0's entry area, each stack with an unmapped
//! guard page below it) and the jump to Rust.
//!
//! Register contract at `_start` (multiboot1): EAX = 0x2BADB002, EBX = the
//! physical address of the multiboot information, paging off, interrupts off.

use core::arch::global_asm;

/// Size of the boot stack the hypervisor runs on, in bytes.
pub const BOOT_STACK_SIZE_BYTES: usize = 64 * 1024;

global_asm!(
    r#"
    .set MULTIBOOT_MAGIC, 0x1BADB002
    /* bit 0: page-align modules, bit 1: memory map, bit 16: a.out kludge */
    .set MULTIBOOT_FLAGS, 0x00010003
    .set KERNEL_VMA, 0xffffffff80000000

    .section .multiboot, "a"
    .p2align 2
multiboot_header:
    .long MULTIBOOT_MAGIC
    .long MULTIBOOT_FLAGS
    .long -(MULTIBOOT_MAGIC + MULTIBOOT_FLAGS)
    .long multiboot_header          /* header_addr (physical: .boot is linked at its load address) */
    .long __image_start_phys        /* load_addr */
    .long __load_end_phys           /* load_end_addr */
    .long __bss_end_phys            /* bss_end_addr: the loader zeroes up to here */
    .long _start                    /* entry_addr */

    .section .boot.text, "ax"
    .code32
    .global _start
_start:
    cli
    cld
    mov edi, eax                    /* multiboot magic, handed to Rust */
    mov esi, ebx                    /* multiboot information (physical) */
    mov esp, offset boot_stack_top - KERNEL_VMA

    /* Long mode available? CPUID 0x80000001 EDX bit 29. */
    mov eax, 0x80000000
    cpuid
    cmp eax, 0x80000001
    jb no_long_mode
    mov eax, 0x80000001
    cpuid
    bt edx, 29
    jnc no_long_mode

    /* Temporary tables: the first 4 GiB with 2 MiB pages, seen three ways:
       identity (to survive turning paging on), the direct map at
       0xffff800000000000 and the image window at 0xffffffff80000000. */
    mov eax, offset boot_pdpt_low - KERNEL_VMA
    or eax, 3
    mov [boot_pml4 - KERNEL_VMA], eax
    mov [boot_pml4 - KERNEL_VMA + 256 * 8], eax
    mov eax, offset boot_pdpt_high - KERNEL_VMA
    or eax, 3
    mov [boot_pml4 - KERNEL_VMA + 511 * 8], eax

    xor ecx, ecx
1:  mov eax, ecx
    shl eax, 12
    add eax, offset boot_pd - KERNEL_VMA
    or eax, 3
    mov [boot_pdpt_low - KERNEL_VMA + ecx * 8], eax
    inc ecx
    cmp ecx, 4
    jne 1b
    mov eax, offset boot_pd - KERNEL_VMA
    or eax, 3
    mov [boot_pdpt_high - KERNEL_VMA + 510 * 8], eax

    xor ecx, ecx
2:  mov eax, ecx
    shl eax, 21
    or eax, 0x83                    /* present, writable, 2 MiB */
    mov [boot_pd - KERNEL_VMA + ecx * 8], eax
    mov eax, ecx
    shr eax, 11                     /* high half of the address: entry >> 11 */
    mov [boot_pd - KERNEL_VMA + ecx * 8 + 4], eax
    inc ecx
    cmp ecx, 2048
    jne 2b

    mov eax, offset boot_pml4 - KERNEL_VMA
    mov cr3, eax
    mov eax, cr4
    or eax, 0x20                    /* PAE */
    mov cr4, eax
    mov ecx, 0xC0000080             /* EFER */
    rdmsr
    or eax, 0x100                   /* LME */
    wrmsr
    mov eax, cr0
    or eax, 0x80010001              /* PG | WP | PE */
    mov cr0, eax

    lgdt [boot_gdt_pointer]
    /* ljmp 0x08:long_mode_low, spelled out: EA, offset32, selector16 */
    .byte 0xea
    .long long_mode_low
    .word 0x08

no_long_mode:
    /* Say so on COM1 and stop: nothing else can run here. */
    mov esi, offset no_long_mode_message
3:  lodsb
    test al, al
    jz 4f
    mov dx, 0x3f8
    out dx, al
    jmp 3b
4:  hlt
    jmp 4b

    .code64
long_mode_low:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    movabs rax, offset long_mode_high
    jmp rax

    .section .boot.data, "a"
    .p2align 3
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff        /* 0x08: 64-bit code, ring 0 */
    .quad 0x00cf92000000ffff        /* 0x10: data, ring 0 */
boot_gdt_end:
boot_gdt_pointer:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt
no_long_mode_message:
    .asciz "xen-core: this CPU has no long mode; halting\r\n"

    .text
long_mode_high:
    movabs rsp, offset boot_stack_top
    xor ebp, ebp
    mov edi, edi
    mov esi, esi
    call {entry}
5:  hlt
    jmp 5b

    .section .bss.page_aligned, "aw", @nobits
    .p2align 12
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4 * 4096

    .global __guard_boot_stack
__guard_boot_stack: .skip 4096
    .skip {boot_stack}
boot_stack_top:


    /* CPU 0's entry area (see percpu.rs): IST and entry stacks and the
       per-CPU block, aligned to its size so masking rsp finds its base. */
    .section .bss.entry_area, "aw", @nobits
    .p2align 17
    .global __cpu0_entry_area
__cpu0_entry_area:
    .skip {area_size}
    "#,
    entry = sym crate::start::kernel_entry,
    boot_stack = const BOOT_STACK_SIZE_BYTES,
    area_size = const super::percpu::AREA_SIZE,
);
