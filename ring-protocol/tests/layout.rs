//! Byte compatibility with Xen's public headers: every size and field offset of blkif,
//! netif, console and store, checked by encoding distinctive values and finding them at
//! Xen's offsets; and response padding always zero (XSA-216).
#![cfg(not(loom))]

use ring_protocol::blkif::{
    self, Blkif, BlkifRequest, BlkifResponse, DiscardRequest, IndirectOperation, IndirectRequest,
    Segment, TransferRequest,
};
use ring_protocol::layout::{self, ring_size};
use ring_protocol::netif::{self, NetifRx, NetifTx, RxRequest, RxResponse, TxRequest, TxResponse};
use ring_protocol::test_utils::{read_page_words, HostileFrontend};
use ring_protocol::{console, store};
use ring_protocol::{
    Backend, Malformation, PageBuffer, Protocol, RingEntry, RingError, SharedPage,
};

fn encode<E: RingEntry>(entry: &E) -> Vec<u8> {
    let mut bytes = vec![0u8; E::SIZE];
    entry.encode(&mut bytes);
    bytes
}

fn u16_at(bytes: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes([bytes[offset], bytes[offset + 1]])
}
fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}
fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("8 bytes"))
}

#[test]
fn ring_header_layout() {
    assert_eq!(layout::HEADER_SIZE, 64);
    assert_eq!(layout::REQUEST_PRODUCER_OFFSET, 0);
    assert_eq!(layout::REQUEST_EVENT_OFFSET, 4);
    assert_eq!(layout::RESPONSE_PRODUCER_OFFSET, 8);
    assert_eq!(layout::RESPONSE_EVENT_OFFSET, 12);
    assert_eq!(ring_size(112), 32);
}

#[test]
fn blkif_sizes() {
    assert_eq!(BlkifRequest::SIZE, 112);
    assert_eq!(BlkifResponse::SIZE, 16);
    assert_eq!(blkif::SEGMENT_SIZE, 8);
    assert_eq!(Blkif::SLOT_SIZE, 112);
    assert_eq!(Blkif::RING_SIZE, 32);
    assert_eq!(blkif::MAX_SEGMENTS_PER_REQUEST, 11);
    assert_eq!(blkif::offsets::SEGMENTS + 11 * blkif::SEGMENT_SIZE, 112);
    assert_eq!(blkif::OPERATION_READ, 0);
    assert_eq!(blkif::OPERATION_WRITE, 1);
    assert_eq!(blkif::OPERATION_WRITE_BARRIER, 2);
    assert_eq!(blkif::OPERATION_FLUSH_DISKCACHE, 3);
    assert_eq!(blkif::OPERATION_DISCARD, 5);
    assert_eq!(blkif::OPERATION_INDIRECT, 6);
    assert_eq!(
        (
            blkif::STATUS_OKAY,
            blkif::STATUS_ERROR,
            blkif::STATUS_NOT_SUPPORTED
        ),
        (0, -1, -2)
    );
}

#[test]
fn blkif_read_write_request_offsets() {
    let mut request = TransferRequest {
        handle: 0xa1b2,
        id: 0x1122_3344_5566_7788,
        sector_number: 0x99aa_bbcc_ddee_ff00,
        segment_count: 11,
        ..TransferRequest::default()
    };
    for (index, segment) in request.segments.iter_mut().enumerate() {
        *segment = Segment {
            grant: 0x1000_0000 + index as u32,
            first_sector: index as u8 % 4,
            last_sector: 7,
        };
    }
    let bytes = encode(&BlkifRequest::Write(request));
    assert_eq!(bytes[0], 1, "operation @0");
    assert_eq!(bytes[1], 11, "nr_segments @1");
    assert_eq!(u16_at(&bytes, 2), 0xa1b2, "handle @2");
    assert_eq!(&bytes[4..8], &[0; 4], "padding @4");
    assert_eq!(u64_at(&bytes, 8), 0x1122_3344_5566_7788, "id @8");
    assert_eq!(
        u64_at(&bytes, 16),
        0x99aa_bbcc_ddee_ff00,
        "sector_number @16"
    );
    for index in 0..11 {
        let segment = 24 + 8 * index;
        assert_eq!(u32_at(&bytes, segment), 0x1000_0000 + index as u32, "gref");
        assert_eq!(bytes[segment + 4], index as u8 % 4, "first_sect @+4");
        assert_eq!(bytes[segment + 5], 7, "last_sect @+5");
        assert_eq!(u16_at(&bytes, segment + 6), 0, "segment padding @+6");
    }
    assert_eq!(
        BlkifRequest::decode(&bytes),
        Ok(BlkifRequest::Write(request))
    );
}

#[test]
fn blkif_discard_request_offsets() {
    let request = DiscardRequest {
        secure: true,
        handle: 0x0102,
        id: 0xdead_beef,
        sector_number: 0x1_0000_0000,
        sector_count: 0x2_0000_0001,
    };
    let bytes = encode(&BlkifRequest::Discard(request));
    assert_eq!(bytes[0], 5, "operation @0");
    assert_eq!(bytes[1], 1, "flag @1 (BLKIF_DISCARD_SECURE)");
    assert_eq!(u16_at(&bytes, 2), 0x0102, "handle @2");
    assert_eq!(u64_at(&bytes, 8), 0xdead_beef, "id @8");
    assert_eq!(u64_at(&bytes, 16), 0x1_0000_0000, "sector_number @16");
    assert_eq!(u64_at(&bytes, 24), 0x2_0000_0001, "nr_sectors @24");
    assert!(bytes[32..].iter().all(|&byte| byte == 0));
    assert_eq!(
        BlkifRequest::decode(&bytes),
        Ok(BlkifRequest::Discard(request))
    );
}

#[test]
fn blkif_indirect_request_offsets() {
    let request = IndirectRequest {
        operation: IndirectOperation::Write,
        segment_count: 1025, // three pages
        id: 77,
        sector_number: 4096,
        handle: 0x3344,
        indirect_grants: [11, 12, 13, 0, 0, 0, 0, 0],
    };
    assert_eq!(request.page_count(), 3);
    let bytes = encode(&BlkifRequest::Indirect(request));
    assert_eq!(bytes[0], 6, "operation @0");
    assert_eq!(bytes[1], 1, "indirect_op @1");
    assert_eq!(u16_at(&bytes, 2), 1025, "nr_segments (u16) @2");
    assert_eq!(u64_at(&bytes, 8), 77, "id @8");
    assert_eq!(u64_at(&bytes, 16), 4096, "sector_number @16");
    assert_eq!(u16_at(&bytes, 24), 0x3344, "handle @24");
    assert_eq!(u32_at(&bytes, 28), 11, "indirect_grefs[0] @28");
    assert_eq!(u32_at(&bytes, 28 + 4 * 2), 13, "indirect_grefs[2]");
    assert_eq!(28 + 4 * blkif::MAX_INDIRECT_PAGES_PER_REQUEST, 60);
    assert_eq!(
        BlkifRequest::decode(&bytes),
        Ok(BlkifRequest::Indirect(request))
    );
}

#[test]
fn blkif_response_offsets_and_zero_padding() {
    let response = BlkifResponse {
        id: 0x0102_0304_0506_0708,
        operation: 3,
        status: -2,
    };
    let bytes = encode(&response);
    assert_eq!(u64_at(&bytes, 0), 0x0102_0304_0506_0708, "id @0");
    assert_eq!(bytes[8], 3, "operation @8");
    assert_eq!(bytes[9], 0, "padding @9");
    assert_eq!(u16_at(&bytes, 10) as i16, -2, "status @10");
    assert_eq!(&bytes[12..16], &[0; 4], "padding @12..16");
    assert_eq!(BlkifResponse::decode(&bytes), Ok(response));
}

#[test]
fn blkif_validation() {
    let valid = encode(&BlkifRequest::Read(TransferRequest {
        id: 5,
        segment_count: 1,
        ..TransferRequest::default()
    }));
    assert!(BlkifRequest::decode(&valid).is_ok());
    let mut bytes = valid.clone();
    bytes[1] = 12;
    let error = BlkifRequest::decode(&bytes).expect_err("12 segments");
    assert_eq!(error.reason, Malformation::BadSegmentCount { count: 12 });
    assert_eq!((error.id, error.operation), (5, 0));
    bytes[1] = 0;
    assert!(
        BlkifRequest::decode(&bytes).is_err(),
        "read needs a segment"
    );
    bytes[0] = blkif::OPERATION_FLUSH_DISKCACHE;
    assert!(BlkifRequest::decode(&bytes).is_ok(), "flush may have none");
    let mut bytes = valid.clone();
    bytes[24 + 4] = 3;
    bytes[24 + 5] = 2;
    assert!(matches!(
        BlkifRequest::decode(&bytes).map_err(|error| error.reason),
        Err(Malformation::BadSectorRange {
            segment: 0,
            first: 3,
            last: 2
        })
    ));
    bytes[24 + 4] = 0;
    bytes[24 + 5] = 8;
    assert!(
        BlkifRequest::decode(&bytes).is_err(),
        "last_sect 8 is past the page"
    );
    for operation in [4u8, 7, 0xff] {
        let mut bytes = valid.clone();
        bytes[0] = operation;
        let error = BlkifRequest::decode(&bytes).expect_err("unknown");
        assert_eq!(error.reason, Malformation::UnknownOperation);
        let answer = BlkifResponse::for_malformed(&error);
        assert_eq!(answer.status, blkif::STATUS_NOT_SUPPORTED);
        assert_eq!(answer.id, 5);
    }
    let mut bytes = vec![0u8; 112];
    bytes[0] = blkif::OPERATION_INDIRECT;
    bytes[1] = blkif::OPERATION_FLUSH_DISKCACHE;
    bytes[2] = 1;
    assert!(matches!(
        BlkifRequest::decode(&bytes).map_err(|error| error.reason),
        Err(Malformation::BadIndirectOperation { operation: 3 })
    ));
    bytes[1] = 0;
    bytes[2] = 0;
    assert!(
        BlkifRequest::decode(&bytes).is_err(),
        "indirect with no segments"
    );
    bytes[2..4].copy_from_slice(&4097u16.to_le_bytes());
    assert!(
        BlkifRequest::decode(&bytes).is_err(),
        "more than 8 pages of segments"
    );
}

#[test]
fn blkif_response_padding_is_zero_in_the_page() {
    // The frontend fills the slot with 0xff; the backend's response over it must leave
    // its own padding bytes zero.
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let mut frontend = HostileFrontend::<Blkif>::initialize(page.clone());
    let mut backend = Backend::<Blkif>::attach(page.clone());
    frontend.produce_raw(&[0xff; 112]);
    let Err(RingError::Malformed(malformed)) = backend.next_request() else {
        panic!("0xff is no operation");
    };
    assert_eq!(malformed.id, u64::MAX);
    backend
        .push_response(&BlkifResponse::for_malformed(&malformed))
        .expect("answer");
    let _ = backend.publish_responses().expect("publish");
    let mut slot = [0u8; 112];
    read_page_words(&page, 64, &mut slot);
    assert_eq!(u64_at(&slot, 0), u64::MAX);
    assert_eq!(slot[8], 0xff, "operation echoed");
    assert_eq!(slot[9], 0, "padding zeroed");
    assert_eq!(u16_at(&slot, 10) as i16, blkif::STATUS_NOT_SUPPORTED);
    assert_eq!(&slot[12..16], &[0; 4], "padding zeroed");
}

#[test]
fn indirect_segment_pages() {
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let segment = Segment {
        grant: 9,
        first_sector: 1,
        last_sector: 6,
    };
    blkif::write_indirect_segment(&page, 511, &segment).expect("in range");
    assert_eq!(blkif::read_indirect_segment(&page, 511), Ok(segment));
    assert!(blkif::write_indirect_segment(&page, 512, &segment).is_err());
    assert!(blkif::read_indirect_segment(&page, 512).is_err());
    let mut raw = [0u8; 8];
    read_page_words(&page, 511 * 8, &mut raw);
    assert_eq!(raw, [9, 0, 0, 0, 1, 6, 0, 0]);
}

#[test]
fn netif_sizes_and_offsets() {
    assert_eq!(
        (
            TxRequest::SIZE,
            TxResponse::SIZE,
            RxRequest::SIZE,
            RxResponse::SIZE
        ),
        (12, 4, 8, 8)
    );
    assert_eq!((NetifTx::SLOT_SIZE, NetifTx::RING_SIZE), (12, 256));
    assert_eq!((NetifRx::SLOT_SIZE, NetifRx::RING_SIZE), (8, 256));

    let tx = TxRequest {
        grant: 0x0a0b_0c0d,
        offset: 0x1112,
        flags: netif::TX_FLAG_MORE_DATA,
        id: 0x2122,
        size: 0x3132,
    };
    let bytes = encode(&tx);
    assert_eq!(u32_at(&bytes, 0), 0x0a0b_0c0d, "gref @0");
    assert_eq!(u16_at(&bytes, 4), 0x1112, "offset @4");
    assert_eq!(u16_at(&bytes, 6), 4, "flags @6");
    assert_eq!(u16_at(&bytes, 8), 0x2122, "id @8");
    assert_eq!(u16_at(&bytes, 10), 0x3132, "size @10");
    assert_eq!(TxRequest::decode(&bytes), Ok(tx));

    let bytes = encode(&TxResponse {
        id: 0x4142,
        status: -1,
    });
    assert_eq!(u16_at(&bytes, 0), 0x4142, "id @0");
    assert_eq!(u16_at(&bytes, 2) as i16, -1, "status @2");

    let bytes = encode(&RxRequest {
        id: 0x5152,
        grant: 0x6162_6364,
    });
    assert_eq!(u16_at(&bytes, 0), 0x5152, "id @0");
    assert_eq!(u16_at(&bytes, 2), 0, "padding @2");
    assert_eq!(u32_at(&bytes, 4), 0x6162_6364, "gref @4");

    let rx = RxResponse {
        id: 0x7172,
        offset: 0x0102,
        flags: netif::RX_FLAG_DATA_VALIDATED,
        status: 1500,
    };
    let bytes = encode(&rx);
    assert_eq!(u16_at(&bytes, 0), 0x7172, "id @0");
    assert_eq!(u16_at(&bytes, 2), 0x0102, "offset @2");
    assert_eq!(u16_at(&bytes, 4), 1, "flags @4");
    assert_eq!(u16_at(&bytes, 6), 1500, "status @6");
    assert_eq!(RxResponse::decode(&bytes), Ok(rx));
    assert!(!TxRequest {
        offset: 4000,
        size: 97,
        ..tx
    }
    .fits_in_page());
    assert!(TxRequest {
        offset: 4000,
        size: 96,
        ..tx
    }
    .fits_in_page());
}

#[test]
fn console_and_store_layouts() {
    assert_eq!((console::INPUT_OFFSET, console::INPUT_SIZE), (0, 1024));
    assert_eq!((console::OUTPUT_OFFSET, console::OUTPUT_SIZE), (1024, 2048));
    assert_eq!(console::INPUT_CONSUMER_OFFSET, 3072);
    assert_eq!(console::INPUT_PRODUCER_OFFSET, 3076);
    assert_eq!(console::OUTPUT_CONSUMER_OFFSET, 3080);
    assert_eq!(console::OUTPUT_PRODUCER_OFFSET, 3084);
    assert_eq!(console::INDICES_END, 3088);
    assert_eq!((store::REQUEST_OFFSET, store::RESPONSE_OFFSET), (0, 1024));
    assert_eq!(store::RING_SIZE, 1024);
    assert_eq!(
        [
            store::REQUEST_CONSUMER_OFFSET,
            store::REQUEST_PRODUCER_OFFSET,
            store::RESPONSE_CONSUMER_OFFSET,
            store::RESPONSE_PRODUCER_OFFSET,
            store::SERVER_FEATURES_OFFSET,
            store::CONNECTION_OFFSET,
            store::ERROR_OFFSET,
        ],
        [2048, 2052, 2056, 2060, 2064, 2068, 2072]
    );
}
