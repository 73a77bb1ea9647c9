//! The data key in the OS keyring (placeholder, filled in below).

use super::sealed::DataKey;
use super::StoreError;
use std::time::Duration;

pub async fn get_or_create_key(_account: String, _timeout: Duration) -> Result<DataKey, StoreError> {
    Err(StoreError::KeyringUnavailable("not implemented".into()))
}
