//! Fuzz target: a real backend consuming a fuzzer-written ring page, then a fuzzer-written
//! script of hostile-frontend actions. The first byte picks the protocol. Any panic is a
//! bug (the entry point asserts the ring's guarantees: poisoning, bounded work, no
//! over-answering).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ring_protocol::blkif::Blkif;
use ring_protocol::netif::{NetifRx, NetifTx};
use ring_protocol::test_utils::fuzz_backend_consume_page;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            let _ = fuzz_backend_consume_page::<Blkif>(rest);
        }
        1 => {
            let _ = fuzz_backend_consume_page::<NetifTx>(rest);
        }
        _ => {
            let _ = fuzz_backend_consume_page::<NetifRx>(rest);
        }
    }
});
