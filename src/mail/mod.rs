//! Message sources for APPEND and LMTP, and the test mbox generator.
//!
//! * [`Mbox`]: messages of an mbox file, indexed once at open and read on demand (memory
//!   does not grow with the file); handed out in order, wrapping around, from any number
//!   of tasks, whole or as a [`MessageStream`] read while it is sent.
//! * [`RandomMessages`]: `random_msg_size=N` bodies of random bytes.
//! * [`generate::generate_mbox`]: a deterministic, realistic test mbox.
//!
//! Random numbers come from rand 0.10, whose object-safe core trait is [`rand::Rng`]
//! (the old `RngCore` name is a deprecated alias there); sources take `&mut dyn rand::Rng`
//! so callers can pass any generator, typically a per-task
//! `rand_xoshiro::Xoshiro256PlusPlus`.

pub mod date;
pub mod generate;
pub mod mbox;
pub mod random;
pub mod sized;

pub use date::MailDate;
pub use generate::{GenerateOptions, GenerateStats, generate_mbox};
pub use mbox::{Mbox, MboxError, MessageStream};
pub use random::RandomMessages;

/// One message to APPEND or deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The message with every line ending in CRLF. Cloning is a reference-count bump.
    pub data: bytes::Bytes,
    /// The internal date to APPEND it with.
    pub date: MailDate,
}

/// Where APPEND and LMTP get their messages. Shared by many tasks behind an `Arc`.
pub trait MessageSource: Send + Sync {
    /// The next message. Sources that need randomness draw it from `rng`; the others
    /// ignore it. Only a file source fails (it changed or cannot be read).
    fn next_message(&self, rng: &mut dyn rand::Rng) -> Result<Message, MboxError>;

    /// The next message as a stream: a large one is read while it is sent instead of
    /// being held in memory whole.
    fn next_stream(&self, rng: &mut dyn rand::Rng) -> Result<MessageStream, MboxError> {
        self.next_message(rng).map(MessageStream::from)
    }

    /// How many distinct messages the source holds, if it is finite.
    fn len_hint(&self) -> Option<usize>;
}

/// The source the settings ask for: random messages of up to `random_msg_size` bytes
/// when it is non-zero (the mbox is then not read, as in ImapTest), else the mbox file.
pub fn open_source(
    mbox: &std::path::Path,
    random_msg_size: u64,
) -> Result<std::sync::Arc<dyn MessageSource>, MboxError> {
    if random_msg_size > 0 {
        Ok(std::sync::Arc::new(RandomMessages::new(random_msg_size)))
    } else {
        Ok(std::sync::Arc::new(Mbox::open(mbox)?))
    }
}
