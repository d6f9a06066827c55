//! The shape of the PEM files the TLS settings name, checked at start: tonic
//! itself would skip a CA certificate it cannot parse and then fail every
//! handshake, so a damaged or wrong file is refused here, naming the setting.

use std::path::Path;

use super::TlsSettingsError;

/// What a PEM file must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// At least one `CERTIFICATE` block (other blocks are ignored).
    Certificates,
    /// Exactly one unencrypted private key block.
    PrivateKey,
}

/// Reads `path` and checks that it holds what `expect` says, in well-formed
/// PEM: each block's base64 decodes to one complete DER structure. tonic
/// itself would skip a CA certificate it cannot parse and then fail every
/// handshake, so the shape is checked here, at start. Returns the file's bytes.
pub(super) fn read_pem(
    setting: &str,
    path: &Path,
    expect: Expect,
) -> Result<Vec<u8>, TlsSettingsError> {
    let failed =
        |why: String| TlsSettingsError::new(format!("{setting} ({}): {why}", path.display()));
    let bytes = std::fs::read(path).map_err(|error| failed(format!("cannot read: {error}")))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| failed("is not PEM text (a DER file? convert it to PEM)".into()))?;
    let blocks = pem_blocks(text).map_err(failed)?;
    match expect {
        Expect::Certificates => {
            if !blocks.iter().any(|label| label == "CERTIFICATE") {
                return Err(failed(
                    "holds no PEM certificate (BEGIN CERTIFICATE)".into(),
                ));
            }
        }
        Expect::PrivateKey => {
            if blocks.iter().any(|label| label == "ENCRYPTED PRIVATE KEY") {
                return Err(failed(
                    "holds an encrypted private key: give the key unencrypted and protect the \
                     file instead"
                        .into(),
                ));
            }
            let keys = blocks
                .iter()
                .filter(|label| {
                    matches!(
                        label.as_str(),
                        "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY"
                    )
                })
                .count();
            if keys != 1 {
                return Err(failed(format!(
                    "holds {keys} PEM private keys (BEGIN PRIVATE KEY), expected exactly one"
                )));
            }
        }
    }
    Ok(bytes)
}

/// The labels (`CERTIFICATE`, `PRIVATE KEY`, ...) of every
/// `-----BEGIN X----- ... -----END X-----` block of `text`, each checked to
/// hold base64 of one DER structure; text outside blocks (the comments
/// `openssl` writes, e.g.) is ignored. An error says what is wrong without
/// quoting the file.
fn pem_blocks(text: &str) -> Result<Vec<String>, String> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut ended = false;
        for line in lines.by_ref() {
            if line == end {
                ended = true;
                break;
            }
            if line.contains(':') {
                // `Proc-Type: 4,ENCRYPTED` and the like: legacy encrypted PEM.
                return Err(format!(
                    "the {label} block has PEM headers (an encrypted key?): give it unencrypted"
                ));
            }
            body.push_str(line);
        }
        if !ended {
            return Err(format!(
                "the {label} block has no END line (truncated file?)"
            ));
        }
        if !base64_decode(&body).is_some_and(|der| is_one_der_structure(&der)) {
            return Err(format!(
                "the {label} block is damaged (not base64 of one DER structure)"
            ));
        }
        blocks.push(label.to_owned());
    }
    Ok(blocks)
}

/// Standard base64, padded or not; `None` on any other character.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::{
        Engine,
        engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    };
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(text).ok()
}

/// Whether `der` is exactly one DER SEQUENCE (what certificates and keys
/// are): tag 0x30, a length, and exactly that many bytes after it.
fn is_one_der_structure(der: &[u8]) -> bool {
    let [0x30, first, rest @ ..] = der else {
        return false;
    };
    let (length, content) = if *first < 0x80 {
        (usize::from(*first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return false;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
        (length, &rest[count..])
    };
    content.len() == length
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_parsing() {
        assert_eq!(base64_decode("TWFu").unwrap(), b"Man");
        assert_eq!(base64_decode("TWE=").unwrap(), b"Ma");
        assert_eq!(base64_decode("TQ==").unwrap(), b"M");
        assert!(base64_decode("TQ==TQ").is_none());
        assert!(base64_decode("T!==").is_none());
        assert!(is_one_der_structure(&[0x30, 0x03, 0x02, 0x01, 0x00]));
        assert!(!is_one_der_structure(&[0x30, 0x04, 0x02, 0x01, 0x00]));
        assert!(!is_one_der_structure(&[0x04, 0x01, 0x00]));
        let mut long = vec![0x30, 0x81, 0x80];
        long.extend(std::iter::repeat_n(0u8, 0x80));
        assert!(is_one_der_structure(&long));
        let blocks = pem_blocks(
            "subject=CN = x\n-----BEGIN CERTIFICATE-----\nMAMC\nAQA=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert_eq!(blocks, ["CERTIFICATE"]);
    }
}
