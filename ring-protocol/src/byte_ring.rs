//! One direction of a byte-stream ring, the kind Xen's console (`io/console.h`) and store
//! (`io/xs_wire.h`) pages use: a power-of-two data array and two free-running 32-bit
//! indices, masked by the array size. There are no event indices: a side notifies the
//! other after every transfer that moved bytes.
//!
//! As with the request rings, the peer's index is checked on every call: a reader never
//! trusts a producer index more than `size` ahead of it or moving backwards, a writer never
//! trusts a consumer index outside what it produced. A bad index poisons the direction.

use crate::error::RingError;
use crate::ring::check_producer;
use crate::shared::SharedPage;
use core::sync::atomic::Ordering;

/// Where one direction of a byte ring lives in its page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRingLayout {
    /// Offset of the data array.
    pub data_offset: usize,
    /// Size of the data array: a power of two.
    pub size: u32,
    /// Offset of the consumer index (u32).
    pub consumer_offset: usize,
    /// Offset of the producer index (u32).
    pub producer_offset: usize,
}

impl ByteRingLayout {
    fn data_position(&self, index: u32) -> usize {
        self.data_offset + (index & (self.size - 1)) as usize
    }
}

/// Reads both indices at attach time and checks they are at most `size` apart.
fn attach_indices(page: &SharedPage<'_>, layout: &ByteRingLayout) -> Result<(u32, u32), RingError> {
    debug_assert!(layout.size.is_power_of_two());
    // Ordering: Acquire on both; attaching happens before any transfer, and pairs with
    // whatever Release publication the previous owner of each index made.
    let producer = page.load_index(layout.producer_offset, Ordering::Acquire);
    let consumer = page.load_index(layout.consumer_offset, Ordering::Acquire);
    if producer.wrapping_sub(consumer) > layout.size {
        return Err(RingError::PeerOverflow {
            producer,
            consumer,
            limit: layout.size,
        });
    }
    Ok((producer, consumer))
}

/// The producing side of one byte-ring direction.
pub struct ByteWriter<'page> {
    page: SharedPage<'page>,
    layout: ByteRingLayout,
    /// Our producer index (authoritative; never read back from the page after attach).
    producer: u32,
    /// The peer's consumer index as last read and accepted.
    consumer_seen: u32,
    fault: Option<RingError>,
}

impl<'page> ByteWriter<'page> {
    /// Attaches to the direction described by `layout`, starting from the indices found.
    ///
    /// # Errors
    ///
    /// [`RingError::PeerOverflow`] if the indices are more than `size` apart.
    pub fn attach(page: SharedPage<'page>, layout: ByteRingLayout) -> Result<Self, RingError> {
        let (producer, consumer) = attach_indices(&page, &layout)?;
        Ok(Self {
            page,
            layout,
            producer,
            consumer_seen: consumer,
            fault: None,
        })
    }

    /// The protocol violation that poisoned this direction, if any.
    pub fn fault(&self) -> Option<RingError> {
        self.fault
    }

    /// Reads and checks the peer's consumer index; returns the free space in bytes.
    ///
    /// # Errors
    ///
    /// [`RingError::PeerConsumerOutOfRange`] if the consumer index moved backwards or past
    /// our producer index; it poisons the direction.
    pub fn free_space(&mut self) -> Result<u32, RingError> {
        if let Some(error) = self.fault {
            return Err(error);
        }
        // Ordering: Acquire, pairing with the reader's Release store of its consumer index:
        // its reads of the bytes it consumed happen before we overwrite them.
        let consumer = self
            .page
            .load_index(self.layout.consumer_offset, Ordering::Acquire);
        let advanced = consumer.wrapping_sub(self.consumer_seen);
        let outstanding = self.producer.wrapping_sub(self.consumer_seen);
        if advanced > outstanding {
            let error = RingError::PeerConsumerOutOfRange {
                consumer,
                previous: self.consumer_seen,
                producer: self.producer,
            };
            self.fault = Some(error);
            return Err(error);
        }
        self.consumer_seen = consumer;
        Ok(self.layout.size - self.producer.wrapping_sub(consumer))
    }

    /// Writes as much of `data` as fits, publishes it, and returns how many bytes were
    /// written (0 when the ring is full). Notify the peer if it is not 0.
    ///
    /// # Errors
    ///
    /// The errors of [`free_space`](Self::free_space).
    pub fn write(&mut self, data: &[u8]) -> Result<usize, RingError> {
        let free = self.free_space()? as usize;
        let count = free.min(data.len());
        for (step, byte) in data[..count].iter().enumerate() {
            let position = self
                .layout
                .data_position(self.producer.wrapping_add(step as u32));
            self.page.write_bytes(position, core::slice::from_ref(byte));
        }
        self.producer = self.producer.wrapping_add(count as u32);
        // Ordering: Release (Xen's wmb() before updating the producer): the data bytes
        // are written before the index that makes them visible.
        self.page.store_index(
            self.layout.producer_offset,
            self.producer,
            Ordering::Release,
        );
        Ok(count)
    }
}

/// The consuming side of one byte-ring direction.
pub struct ByteReader<'page> {
    page: SharedPage<'page>,
    layout: ByteRingLayout,
    /// Our consumer index (authoritative; never read back from the page after attach).
    consumer: u32,
    /// The peer's producer index as last read and accepted.
    producer_seen: u32,
    fault: Option<RingError>,
}

impl<'page> ByteReader<'page> {
    /// Attaches to the direction described by `layout`, starting from the indices found.
    ///
    /// # Errors
    ///
    /// [`RingError::PeerOverflow`] if the indices are more than `size` apart.
    pub fn attach(page: SharedPage<'page>, layout: ByteRingLayout) -> Result<Self, RingError> {
        let (producer, consumer) = attach_indices(&page, &layout)?;
        Ok(Self {
            page,
            layout,
            consumer,
            producer_seen: producer,
            fault: None,
        })
    }

    /// The protocol violation that poisoned this direction, if any.
    pub fn fault(&self) -> Option<RingError> {
        self.fault
    }

    /// Reads and checks the peer's producer index; returns the bytes ready to read.
    ///
    /// # Errors
    ///
    /// [`RingError::PeerOverflow`] or [`RingError::PeerRewound`] for a producer index more
    /// than `size` ahead or moved backwards; both poison the direction.
    pub fn available(&mut self) -> Result<u32, RingError> {
        if let Some(error) = self.fault {
            return Err(error);
        }
        // Ordering: Acquire, pairing with the writer's Release store of its producer
        // index: the bytes up to it are visible to our reads.
        let producer = self
            .page
            .load_index(self.layout.producer_offset, Ordering::Acquire);
        match check_producer(
            producer,
            self.consumer,
            self.producer_seen,
            self.layout.size,
        ) {
            Ok(available) => {
                self.producer_seen = producer;
                Ok(available)
            }
            Err(error) => {
                self.fault = Some(error);
                Err(error)
            }
        }
    }

    /// Copies up to `buffer.len()` ready bytes out, frees their space, and returns how many
    /// were read. Notify the peer if it is not 0.
    ///
    /// # Errors
    ///
    /// The errors of [`available`](Self::available).
    pub fn read(&mut self, buffer: &mut [u8]) -> Result<usize, RingError> {
        let available = self.available()? as usize;
        let count = available.min(buffer.len());
        for (step, byte) in buffer[..count].iter_mut().enumerate() {
            let position = self
                .layout
                .data_position(self.consumer.wrapping_add(step as u32));
            self.page.read_bytes(position, core::slice::from_mut(byte));
        }
        self.consumer = self.consumer.wrapping_add(count as u32);
        // Ordering: Release (Xen's mb() before updating the consumer): our reads of the
        // bytes happen before the writer may reuse their space.
        self.page.store_index(
            self.layout.consumer_offset,
            self.consumer,
            Ordering::Release,
        );
        Ok(count)
    }
}
