#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    PreAuth,
    Bye,
}
pub struct RespText<'a> {
    pub code: Option<Code<'a>>,
    pub text: &'a [u8],
}
pub enum Code<'a> {
    Capability(Vec<&'a [u8]>),
    Other,
}
pub enum Response<'a> {
    Continuation(RespText<'a>),
    Tagged {
        tag: &'a [u8],
        status: Status,
        text: RespText<'a>,
    },
    Untagged(Untagged<'a>),
}
pub enum Untagged<'a> {
    Status { status: Status, text: RespText<'a> },
    Capability(Vec<&'a [u8]>),
    Exists(u32),
    Expunge(u32),
}
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct ParseError;
