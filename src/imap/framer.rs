use bytes::BytesMut;
#[derive(Debug, Clone)]
pub struct FramerLimits {
    pub max_line: usize,
    pub max_literal: usize,
}
impl Default for FramerLimits {
    fn default() -> Self {
        FramerLimits {
            max_line: 1 << 20,
            max_literal: 32768,
        }
    }
}
#[derive(Debug)]
pub struct Framer;
impl Framer {
    pub fn new(_l: FramerLimits) -> Self {
        Framer
    }
    pub fn next_response(&mut self, _b: &mut BytesMut) -> Result<Option<RawResponse>, FrameError> {
        todo!()
    }
    pub fn finish(&mut self, _b: &mut BytesMut) -> Result<(), FrameError> {
        todo!()
    }
}
#[derive(Debug)]
pub struct RawResponse;
impl RawResponse {
    pub fn first_line(&self) -> &[u8] {
        todo!()
    }
    pub fn parse(&self) -> Result<super::response::Response<'_>, super::response::ParseError> {
        todo!()
    }
}
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct FrameError;
