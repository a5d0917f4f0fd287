//! Bytes produced while they are written: a message literal read from its file chunk by
//! chunk, so a large message never sits in memory whole.

/// A body streamed into a connection's output after the bytes queued before it.
pub trait BodySource: Send + std::fmt::Debug {
    /// Bytes still to come; a literal announces this many up front.
    fn remaining(&self) -> u64;

    /// Appends the next bytes to `out`: at most `max`, and at least one while any
    /// remain. A source that cannot deliver what it announced fails (the peer is then
    /// out of sync and the connection must end).
    fn read_into(&mut self, out: &mut Vec<u8>, max: usize) -> std::io::Result<()>;
}

/// A body already in memory.
#[derive(Debug, Clone)]
pub struct InMemory {
    data: bytes::Bytes,
}

impl InMemory {
    pub fn new(data: bytes::Bytes) -> Self {
        InMemory { data }
    }
}

impl BodySource for InMemory {
    fn remaining(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_into(&mut self, out: &mut Vec<u8>, max: usize) -> std::io::Result<()> {
        let chunk = self.data.split_to(max.min(self.data.len()));
        out.extend_from_slice(&chunk);
        Ok(())
    }
}
