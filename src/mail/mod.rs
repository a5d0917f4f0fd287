pub mod generate {
    #[derive(Default)]
    pub struct GenerateOptions {
        pub count: usize,
        pub seed: u64,
        pub domain: String,
        pub start_year: i32,
    }
    pub struct GenerateStats {
        pub messages: usize,
        pub bytes: u64,
        pub max_size: usize,
    }
    pub fn generate_mbox(
        _o: &GenerateOptions,
        _w: &mut dyn std::io::Write,
    ) -> std::io::Result<GenerateStats> {
        todo!()
    }
}
pub struct MailDate;
impl MailDate {
    pub fn imap_format(&self) -> String {
        todo!()
    }
}
pub struct Message {
    pub data: bytes::Bytes,
    pub date: MailDate,
}
pub trait MessageSource: Send + Sync {
    fn next_message(&self, rng: &mut dyn rand::Rng) -> Message;
}
pub struct Mbox;
impl Mbox {
    pub fn open(_p: &std::path::Path) -> Result<Self, MboxError> {
        todo!()
    }
}
impl MessageSource for Mbox {
    fn next_message(&self, _r: &mut dyn rand::Rng) -> Message {
        todo!()
    }
}
pub struct RandomMessages;
impl RandomMessages {
    pub fn new(_n: u64) -> Self {
        todo!()
    }
}
impl MessageSource for RandomMessages {
    fn next_message(&self, _r: &mut dyn rand::Rng) -> Message {
        todo!()
    }
}
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct MboxError;
