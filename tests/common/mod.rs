#![allow(dead_code)]
use std::path::PathBuf;
pub struct Lab {
    pub dir: PathBuf,
    pub ca_file: PathBuf,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub pop3_port: u16,
    pub lmtp_port: u16,
    pub user_password: &'static str,
    pub master_user: &'static str,
    pub master_password: &'static str,
}
pub fn lab() -> &'static Lab {
    todo!()
}
