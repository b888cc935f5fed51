//! The console and store byte rings: transfers across the wrap of the data array and of
//! the 32-bit indices, a full ring, and a hostile peer's indices reported and poisoning.
#![cfg(not(loom))]

use proptest::prelude::*;
use ring_protocol::console::{self, ConsoleBackend, ConsoleFrontend};
use ring_protocol::store::{self, StoreClient, StoreServer};
use ring_protocol::test_utils::write_page_words;
use ring_protocol::{PageBuffer, RingError, SharedPage};

fn set_index(page: &SharedPage<'_>, offset: usize, value: u32) {
    write_page_words(page, offset, &value.to_le_bytes());
}

#[test]
fn console_output_round_trip_with_wrap() {
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    // Start both `out` indices just below 2^32 so the indices wrap too.
    set_index(&page, console::OUTPUT_PRODUCER_OFFSET, u32::MAX - 100);
    set_index(&page, console::OUTPUT_CONSUMER_OFFSET, u32::MAX - 100);
    let mut guest = ConsoleFrontend::attach(page.clone()).expect("consistent");
    let mut daemon = ConsoleBackend::attach(page).expect("consistent");
    let message: Vec<u8> = (0..5000u32).map(|value| value as u8).collect();
    let mut received = Vec::new();
    let mut sent = 0;
    let mut buffer = [0u8; 700];
    while received.len() < message.len() {
        sent += guest.output.write(&message[sent..]).expect("healthy");
        let count = daemon.output.read(&mut buffer).expect("healthy");
        received.extend_from_slice(&buffer[..count]);
    }
    assert_eq!(received, message);
}

#[test]
fn console_full_and_empty() {
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let mut guest = ConsoleFrontend::attach(page.clone()).expect("consistent");
    let mut daemon = ConsoleBackend::attach(page).expect("consistent");
    assert_eq!(guest.input.read(&mut [0u8; 8]), Ok(0));
    assert_eq!(
        daemon.input.write(&[7u8; 1500]),
        Ok(1024),
        "in[] holds 1024"
    );
    assert_eq!(daemon.input.write(&[7u8; 10]), Ok(0), "full");
    assert_eq!(daemon.input.free_space(), Ok(0));
    let mut sink = [0u8; 2000];
    assert_eq!(guest.input.read(&mut sink), Ok(1024));
    assert_eq!(daemon.input.free_space(), Ok(1024));
    assert_eq!(guest.output.free_space(), Ok(2048));
}

#[test]
fn hostile_console_indices_are_reported_and_poison() {
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let mut guest = ConsoleFrontend::attach(page.clone()).expect("consistent");
    // The backend claims 1025 bytes of input: more than in[] holds.
    set_index(&page, console::INPUT_PRODUCER_OFFSET, 1025);
    let error = guest.input.read(&mut [0u8; 16]).expect_err("overflow");
    assert!(matches!(error, RingError::PeerOverflow { limit: 1024, .. }));
    set_index(&page, console::INPUT_PRODUCER_OFFSET, 1);
    assert_eq!(guest.input.read(&mut [0u8; 16]), Err(error), "poisoned");
    assert_eq!(guest.input.fault(), Some(error));

    // The backend moves out_cons past what the guest produced.
    assert_eq!(guest.output.write(b"hello"), Ok(5));
    set_index(&page, console::OUTPUT_CONSUMER_OFFSET, 6);
    let error = guest
        .output
        .write(b"x")
        .expect_err("consumer past producer");
    assert_eq!(
        error,
        RingError::PeerConsumerOutOfRange {
            consumer: 6,
            previous: 0,
            producer: 5
        }
    );
    assert!(error.is_fatal());
    assert_eq!(guest.output.write(b"x"), Err(error));

    // Inconsistent at attach.
    set_index(&page, console::OUTPUT_PRODUCER_OFFSET, 5000);
    set_index(&page, console::OUTPUT_CONSUMER_OFFSET, 0);
    assert!(ConsoleBackend::attach(page).is_err());
}

#[test]
fn store_round_trip() {
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let mut client = StoreClient::attach(page.clone()).expect("consistent");
    let mut server = StoreServer::attach(page.clone()).expect("consistent");
    assert_eq!(
        client.requests.write(b"READ /local/domain/1/name\0"),
        Ok(26)
    );
    let mut request = [0u8; 64];
    assert_eq!(server.requests.read(&mut request), Ok(26));
    assert_eq!(&request[..4], b"READ");
    assert_eq!(server.responses.write(b"banking"), Ok(7));
    let mut response = [0u8; 64];
    assert_eq!(client.responses.read(&mut response), Ok(7));
    assert_eq!(&response[..7], b"banking");
    let mut index = [0u8; 4];
    ring_protocol::test_utils::read_page_words(&page, store::REQUEST_PRODUCER_OFFSET, &mut index);
    assert_eq!(u32::from_le_bytes(index), 26);
}

proptest! {
    /// A console reader against a producer index set to anything, interleaved with
    /// honest writes: never a panic, errors exactly when the index leaves the window.
    #[test]
    fn console_reader_survives_hostile_producer(
        actions in prop::collection::vec(
            prop_oneof![
                (0usize..600).prop_map(Ok),
                prop_oneof![0u32..3000, any::<u32>()].prop_map(Err),
            ],
            1..100,
        ),
    ) {
        let buffer = PageBuffer::new();
        let page = SharedPage::new(&buffer);
        let mut daemon = ConsoleBackend::attach(page.clone()).expect("consistent");
        let mut writer = ConsoleFrontend::attach(page.clone()).expect("consistent");
        let mut consumed = 0u32;
        let mut seen = 0u32;
        let mut sink = [0u8; 256];
        for action in actions {
            match action {
                Ok(length) => {
                    let _ = writer.output.write(&vec![1u8; length]);
                }
                Err(producer) => set_index(&page, console::OUTPUT_PRODUCER_OFFSET, producer),
            }
            let mut raw = [0u8; 4];
            ring_protocol::test_utils::read_page_words(
                &page, console::OUTPUT_PRODUCER_OFFSET, &mut raw);
            let producer = u32::from_le_bytes(raw);
            let anomaly = producer.wrapping_sub(consumed) > 2048
                || producer.wrapping_sub(consumed) < seen.wrapping_sub(consumed);
            let was_poisoned = daemon.output.fault().is_some();
            match daemon.output.read(&mut sink) {
                Ok(count) => {
                    prop_assert!(!anomaly && !was_poisoned);
                    consumed = consumed.wrapping_add(count as u32);
                    seen = producer;
                }
                Err(error) => prop_assert!(anomaly || was_poisoned, "false alarm {:?}", error),
            }
        }
    }
}
