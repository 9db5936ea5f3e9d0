//! Keys and ciphertexts for saved connection strings.
//!
//! Format of a sealed value: `cs1:<key id>:<base64(nonce || ciphertext || tag)>`.
//! - AES-256-GCM with a fresh random 96-bit nonce from the OS for every seal.
//! - The associated data binds the ciphertext to its format, key id and connection name, so a
//!   value copied into another row, or under another key id, does not open.
//! - The key id is a key check value (the first 4 bytes of AES-256(key, a fixed block)): it tells
//!   which key sealed a value without revealing anything usable about the key.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, AeadCore, OsRng, Payload};
use aes_gcm::aes::cipher::{BlockEncrypt, KeyInit as BlockKeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

pub const KEY_ENV: &str = "CLOUD_SYNC_ENCRYPTION_KEY";
pub const KEY_FILE_ENV: &str = "CLOUD_SYNC_ENCRYPTION_KEY_FILE";
pub const PREVIOUS_KEY_ENV: &str = "CLOUD_SYNC_ENCRYPTION_KEY_PREVIOUS";
pub const PREVIOUS_KEY_FILE_ENV: &str = "CLOUD_SYNC_ENCRYPTION_KEY_PREVIOUS_FILE";

const FORMAT: &str = "cs1";
const NONCE_LEN: usize = 12;
const KEY_FORMS: &str =
    "accepted forms are 64 hex digits, base64 of 32 bytes, or exactly 32 raw bytes \
     (generate one with `openssl rand -hex 32`)";

/// A plaintext secret: zeroed on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    pub fn new(value: String) -> Self {
        SecretString(Zeroizing::new(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(***)")
    }
}

/// A 256-bit key and its public identifier.
pub struct Key {
    id: String,
    bytes: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key {{ id: {}, bytes: *** }}", self.id)
    }
}

impl Key {
    /// Parses a key in one of the accepted forms. `origin` names where it came from, for errors.
    pub fn parse(raw: &[u8], origin: &str) -> Result<Key> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        if raw.len() == 32 {
            bytes.copy_from_slice(raw);
        } else {
            let text = std::str::from_utf8(raw)
                .map_err(|_| bad_key(origin, "it is neither 32 raw bytes nor text"))?
                .trim();
            if text.is_empty() {
                return Err(bad_key(origin, "it is empty"));
            }
            let decoded = decode_key_text(text).ok_or_else(|| {
                bad_key(
                    origin,
                    &format!("it is {} characters of neither form", text.len()),
                )
            })?;
            bytes.copy_from_slice(&decoded);
        }
        if bytes.iter().all(|b| *b == bytes[0]) {
            return Err(bad_key(origin, "all its bytes are identical"));
        }
        Ok(Key {
            id: key_id(&bytes),
            bytes,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

fn bad_key(origin: &str, why: &str) -> Error {
    Error::secret(format!("{origin} is not a usable key: {why}; {KEY_FORMS}"))
}

fn decode_key_text(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes = (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        return Some(Zeroizing::new(bytes));
    }
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .map(Zeroizing::new)
        .filter(|bytes| bytes.len() == 32)
}

fn key_id(bytes: &[u8; 32]) -> String {
    let cipher = Aes256::new(bytes.into());
    let mut block = *b"cloud_sync keyid";
    cipher.encrypt_block((&mut block).into());
    let id = block[..4].iter().map(|b| format!("{b:02x}")).collect();
    block.zeroize();
    id
}

/// The keys in force: the current one seals, either one opens.
#[derive(Debug, Default)]
pub struct Keyring {
    pub current: Option<Key>,
    pub previous: Option<Key>,
}

impl Keyring {
    /// Reads the keys from the environment (a value or a file per key). Read on each use, so a
    /// key is never cached longer than the operation that needs it.
    pub fn from_env() -> Result<Keyring> {
        Ok(Keyring {
            current: key_from_env(KEY_ENV, KEY_FILE_ENV)?,
            previous: key_from_env(PREVIOUS_KEY_ENV, PREVIOUS_KEY_FILE_ENV)?,
        })
    }

    pub fn current(&self) -> Result<&Key> {
        self.current.as_ref().ok_or_else(|| {
            Error::secret(format!(
                "no encryption key is configured: set {KEY_ENV} (or {KEY_FILE_ENV} to a file \
                 holding the key); {KEY_FORMS}"
            ))
        })
    }

    /// Seals `plaintext` for the connection `name` under the current key.
    pub fn seal(&self, name: &str, plaintext: &SecretString) -> Result<String> {
        let key = self.current()?;
        let cipher = Aes256Gcm::new(key.bytes.as_ref().into());
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = associated_data(key.id(), name);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.expose().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| Error::secret("encryption failed"))?;
        let mut blob = Vec::with_capacity(NONCE_LEN + sealed.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        Ok(format!("{FORMAT}:{}:{}", key.id(), STANDARD.encode(blob)))
    }

    /// Opens a value sealed for the connection `name` with whichever configured key sealed it.
    pub fn open(&self, name: &str, sealed: &str) -> Result<SecretString> {
        let unreadable = || {
            Error::secret(format!(
                "saved connection '{name}' is not in a format this version of cloud_sync reads; \
                 save it again with cloud_sync_save()"
            ))
        };
        let mut parts = sealed.splitn(3, ':');
        let (Some(FORMAT), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(unreadable());
        };
        let key = [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .find(|k| k.id() == key_id)
            .ok_or_else(|| self.missing_key(name, key_id))?;
        let blob = STANDARD.decode(body).map_err(|_| unreadable())?;
        if blob.len() < NONCE_LEN + 16 {
            return Err(unreadable());
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new(key.bytes.as_ref().into());
        let aad = associated_data(key_id, name);
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                Error::secret(format!(
                    "saved connection '{name}' failed its integrity check: its ciphertext was \
                     altered or copied from another connection; save it again with cloud_sync_save()"
                ))
            })?;
        let text = String::from_utf8(plain).map_err(|e| {
            let mut bytes = e.into_bytes();
            bytes.zeroize();
            unreadable()
        })?;
        Ok(SecretString::new(text))
    }

    fn missing_key(&self, name: &str, key_id: &str) -> Error {
        if self.current.is_none() && self.previous.is_none() {
            return Error::secret(format!(
                "saved connection '{name}' is encrypted (key id {key_id}) but no encryption key \
                 is configured: set {KEY_ENV} to the key it was saved with"
            ));
        }
        let configured: Vec<String> = [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .map(|k| k.id().to_string())
            .collect();
        Error::secret(format!(
            "saved connection '{name}' was encrypted with key id {key_id}, but the configured \
             key ids are {}: set {KEY_ENV} to that key, or set it as {PREVIOUS_KEY_ENV} and run \
             cloud_sync_rekey()",
            configured.join(", ")
        ))
    }
}

fn associated_data(key_id: &str, name: &str) -> Vec<u8> {
    format!("cloud_sync:{FORMAT}:{key_id}:{name}").into_bytes()
}

fn key_from_env(value_var: &str, file_var: &str) -> Result<Option<Key>> {
    let value = std::env::var_os(value_var).filter(|v| !v.is_empty());
    let file = std::env::var_os(file_var).filter(|v| !v.is_empty());
    match (value, file) {
        (Some(_), Some(_)) => Err(Error::secret(format!(
            "both {value_var} and {file_var} are set: set only one of them"
        ))),
        (Some(value), None) => {
            let raw =
                Zeroizing::new(std::os::unix::ffi::OsStrExt::as_bytes(value.as_os_str()).to_vec());
            Key::parse(&raw, value_var).map(Some)
        }
        (None, Some(path)) => {
            let raw = read_key_file(Path::new(&path), file_var)?;
            Key::parse(&raw, &format!("the file named by {file_var}")).map(Some)
        }
        (None, None) => Ok(None),
    }
}

fn read_key_file(path: &Path, file_var: &str) -> Result<Zeroizing<Vec<u8>>> {
    std::fs::read(path).map(Zeroizing::new).map_err(|e| {
        Error::secret(format!(
            "cannot read the key file {} named by {file_var}: {e}",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn ring(key: &str) -> Keyring {
        Keyring {
            current: Some(Key::parse(key.as_bytes(), "test key").unwrap()),
            previous: None,
        }
    }

    fn secret(s: &str) -> SecretString {
        SecretString::new(s.to_string())
    }

    #[test]
    fn the_three_key_forms_give_the_same_key() {
        let hex = Key::parse(HEX.as_bytes(), "k").unwrap();
        let raw: Vec<u8> = (0u8..32).collect();
        let from_raw = Key::parse(&raw, "k").unwrap();
        let from_b64 = Key::parse(STANDARD.encode(&raw).as_bytes(), "k").unwrap();
        let from_b64_nopad = Key::parse(URL_SAFE_NO_PAD.encode(&raw).as_bytes(), "k").unwrap();
        assert_eq!(*hex.bytes, *from_raw.bytes);
        assert_eq!(*hex.bytes, *from_b64.bytes);
        assert_eq!(*hex.bytes, *from_b64_nopad.bytes);
        assert_eq!(hex.id().len(), 8);
        assert_eq!(hex.id(), from_raw.id());
    }

    #[test]
    fn malformed_keys_are_refused_with_the_accepted_forms() {
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"   ".to_vec(),
            b"short".to_vec(),
            HEX.as_bytes()[..62].to_vec(),
            format!("{}zz", &HEX[..62]).into_bytes(),
            STANDARD.encode([7u8; 31]).into_bytes(),
            vec![0u8; 32],
            "a".repeat(64).into_bytes(),
            vec![0xff; 33],
        ];
        for case in cases {
            let err = Key::parse(&case, "CLOUD_SYNC_ENCRYPTION_KEY").unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("accepted forms"), "{msg}");
            assert!(msg.starts_with("CLOUD_SYNC_ENCRYPTION_KEY"), "{msg}");
        }
    }

    #[test]
    fn a_key_never_prints() {
        let key = Key::parse(HEX.as_bytes(), "k").unwrap();
        let printed = format!("{key:?} {:?}", secret("postgres://u:hunter2@h/db"));
        assert!(!printed.contains("0001020304"));
        assert!(!printed.contains("hunter2"));
    }

    #[test]
    fn seal_then_open_round_trips_with_fresh_nonces() {
        let ring = ring(HEX);
        let plain = secret("postgresql://u:p@h/db");
        let a = ring.seal("prod", &plain).unwrap();
        let b = ring.seal("prod", &plain).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("cs1:{}:", ring.current().unwrap().id())));
        assert_eq!(ring.open("prod", &a).unwrap(), plain);
        assert_eq!(ring.open("prod", &b).unwrap(), plain);
    }

    #[test]
    fn a_ciphertext_opens_only_in_its_own_row() {
        let ring = ring(HEX);
        let sealed = ring.seal("prod", &secret("x")).unwrap();
        let err = ring.open("staging", &sealed).unwrap_err().to_string();
        assert!(err.contains("integrity check"), "{err}");
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let ring = ring(HEX);
        let sealed = ring.seal("prod", &secret("postgresql://u:p@h/db")).unwrap();
        let (head, body) = sealed.rsplit_once(':').unwrap();
        let blob = STANDARD.decode(body).unwrap();
        for i in 0..blob.len() * 8 {
            let mut flipped = blob.clone();
            flipped[i / 8] ^= 1 << (i % 8);
            let tampered = format!("{head}:{}", STANDARD.encode(flipped));
            assert!(
                ring.open("prod", &tampered).is_err(),
                "bit {i} went unnoticed"
            );
        }
    }

    #[test]
    fn wrong_missing_and_previous_keys() {
        let old = ring(HEX);
        let sealed = old.seal("prod", &secret("s")).unwrap();
        let other = "ff".repeat(31) + "00";
        let new = ring(&other);
        let err = new.open("prod", &sealed).unwrap_err().to_string();
        assert!(
            err.contains("key id") && err.contains("CLOUD_SYNC_ENCRYPTION_KEY_PREVIOUS"),
            "{err}"
        );

        let none = Keyring::default();
        let err = none.open("prod", &sealed).unwrap_err().to_string();
        assert!(err.contains("no encryption key is configured"), "{err}");
        assert!(none.seal("prod", &secret("s")).is_err());

        let rotated = Keyring {
            current: Some(Key::parse(other.as_bytes(), "k").unwrap()),
            previous: Some(Key::parse(HEX.as_bytes(), "k").unwrap()),
        };
        assert_eq!(rotated.open("prod", &sealed).unwrap().expose(), "s");
        let resealed = rotated.seal("prod", &secret("s")).unwrap();
        assert!(resealed.contains(rotated.current().unwrap().id()));
    }

    #[test]
    fn garbage_is_an_error_not_garbage() {
        let ring = ring(HEX);
        for bad in [
            "",
            "cs1",
            "cs1:abc",
            "cs2:00000000:AAAA",
            "plain text",
            "cs1:x:%%%",
        ] {
            assert!(ring.open("prod", bad).is_err(), "{bad}");
        }
    }
}
