//! The data plane of a container on the emulator's blob front, and the content hashes tests
//! compare blobs and templates with.

use aib::azure::Azure;
use aib::azure::blob::{BlobAuth, Container};
use aib_emulator::Emulator;

/// `account`'s `container` as the emulator's Owner principal sees it, through aib's own blob
/// client (the one upload-scripts uses): a test puts or lists blobs the way a step would.
/// The principal needs a data role on the account ([`crate::Seed::storage`] grants one).
pub fn container(emu: &Emulator, azure: &Azure, account: &str, container: &str) -> Container {
    let endpoint = url::Url::parse(&format!("{}{account}/", emu.blob_url()))
        .expect("the blob front's URL with an account is a URL");
    Container::new(
        &endpoint,
        account,
        container,
        BlobAuth::Bearer(azure.tokens.as_token_credential()),
        &azure.http,
        Default::default(),
    )
    .expect("the container client is built")
}

/// MD5 of `bytes`, as Put Blob takes it and the blob listing reports it.
pub fn md5(bytes: &[u8]) -> [u8; 16] {
    use md5::Digest as _;
    md5::Md5::digest(bytes).into()
}

/// Lower-case hex SHA-256 of `bytes`, as Image Builder's `sha256Checksum` and the steps'
/// outcomes give it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
