//! Fuzzes the boot-bundle parser: any bytes, parsed and (if accepted)
//! checked against the parser's promises, with every kernel verified.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xen_core::bundle::fuzz_one(data);
});
