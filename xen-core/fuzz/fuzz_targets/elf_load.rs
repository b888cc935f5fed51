//! Fuzzes the domain-kernel ELF loader: any bytes, planned for several RAM
//! sizes, with every returned plan checked against the loader's promises.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xen_core::elf_loader::fuzz_one(data);
});
