//! cloud_sync_version(), cloud_sync_debug().

use serde_json::json;

use crate::error::Result;
use crate::jobs::journal;
use crate::local::schema;
use crate::secret::{self, Keyring};
use crate::sqlite::{api, Call, Output};

pub fn version(_: &Call) -> Result<Output> {
    Ok(Output::Text(env!("CARGO_PKG_VERSION").into()))
}

pub fn debug(call: &Call) -> Result<Output> {
    // Describes the keys without ever showing them: configured or not, and their ids.
    let keys = match Keyring::from_env() {
        Ok(ring) => json!({
            "configured": ring.current.is_some(),
            "key_id": ring.current.as_ref().map(|k| k.id().to_string()),
            "previous_key_id": ring.previous.as_ref().map(|k| k.id().to_string()),
        }),
        Err(e) => json!({ "configured": false, "error": e.to_string() }),
    };
    let info = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "git_commit": env!("CLOUD_SYNC_GIT_COMMIT"),
        "sqlite_version": api::libversion(),
        "tls_backend": crate::remote::TLS_BACKEND,
        // A damaged cloud_sync_meta is shown, not an error: this is where one looks for it.
        "schema_version": match schema::installed_version(&call.db) {
            Ok(version) => json!(version),
            Err(e) => json!({ "error": e.to_string() }),
        },
        "database_readonly": call.db.is_readonly(),
        "journal_mode": journal::mode(&call.db)?,
        "journal_notice": journal::notice(&call.db)?,
        "encryption_key": keys,
        "key_variables": [secret::KEY_ENV, secret::KEY_FILE_ENV, secret::PREVIOUS_KEY_ENV, secret::PREVIOUS_KEY_FILE_ENV],
    });
    Ok(Output::Text(info.to_string()))
}
