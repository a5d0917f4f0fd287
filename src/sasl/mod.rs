pub struct Credentials {
    pub authcid: String,
    pub password: String,
    pub authzid: Option<String>,
}
pub trait Mechanism: Send {
    fn name(&self) -> &'static str;
    fn initial_response(&mut self) -> Option<Vec<u8>>;
    fn step(&mut self, c: &[u8]) -> Result<Vec<u8>, SaslError>;
    fn finish(&mut self) -> Result<(), SaslError>;
}
pub fn mechanism(
    _n: &str,
    _c: Credentials,
    _s: &ScramCache,
) -> Result<Box<dyn Mechanism>, SaslError> {
    todo!()
}
#[derive(Clone, Default, Debug)]
pub struct ScramCache;
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct SaslError;
