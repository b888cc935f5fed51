//! Proptests of the bundle parser: arbitrary and mutated bundles never
//! panic, and whatever is accepted keeps the parser's promises.

use super::test_bundle::{at, build, put, two_domains};
use super::*;
use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        fuzz_one(&data);
    }

    #[test]
    fn mutated_bundles_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = build(&two_domains(), b"policy");
        for (index, value) in edits {
            let position = index.index(bytes.len());
            bytes[position] = value;
        }
        if truncate {
            let length = cut.index(bytes.len());
            bytes.truncate(length);
        }
        fuzz_one(&bytes);
    }

    #[test]
    fn mutated_fields_never_panic(
        domain_index in 0usize..2,
        field in prop::sample::select(vec![
            record::MEMORY_KIB, record::KERNEL_OFFSET, record::KERNEL_LENGTH,
            record::COMMAND_LINE_OFFSET, record::COMMAND_LINE_LENGTH, record::FLAGS,
        ]),
        value in prop_oneof![any::<u64>(), 0u64..0x800, Just(u64::MAX)],
    ) {
        let mut bytes = build(&two_domains(), b"policy");
        let width = if field == record::COMMAND_LINE_LENGTH || field == record::FLAGS { 4 } else { 8 };
        put(&mut bytes, at(domain_index, field), &value.to_le_bytes()[..width]);
        fuzz_one(&bytes);
    }
}
