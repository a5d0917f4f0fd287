pub struct UserTemplate;
impl UserTemplate {
    pub fn parse(_t: &str) -> Result<Self, UserError> {
        todo!()
    }
}
pub struct UserFileEntry;
pub fn read_userfile(_p: &std::path::Path) -> Result<Vec<UserFileEntry>, UserError> {
    todo!()
}
pub struct UserPicker;
impl UserPicker {
    pub fn new(
        _t: UserTemplate,
        _u: (u32, u32),
        _d: (u32, u32),
        _f: Option<Vec<UserFileEntry>>,
        _p: String,
    ) -> Result<Self, UserError> {
        todo!()
    }
    pub fn pick(&self, _r: &mut impl rand::Rng) -> User {
        todo!()
    }
    pub fn user_by_index(&self, _i: u32) -> User {
        todo!()
    }
}
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct User {
    pub name: String,
    pub password: String,
}
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct UserError;
