//! Hex text for bytes: map keys and values in `--map` files, reports and
//! dumps, and the serde adapters that write byte vectors that way.

/// Lower-case hex, two digits per byte, no separators.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Bytes from exactly two hex digits per byte, nothing else: the form
/// [`hex`] writes, for text xdpqual made itself (the matrix protocol).
/// Works on bytes, so no input can split a UTF-8 character.
pub fn decode(s: &str) -> Result<Vec<u8>, String> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Err(format!("hex text has an odd number of digits ({})", b.len()));
    }
    b.chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
            _ => Err(format!(
                "'{}' at offset {} is not a pair of hex digits",
                String::from_utf8_lossy(pair).escape_debug(),
                2 * i
            )),
        })
        .collect()
}

/// Bytes from hex a user wrote (`--map` files, configs): whitespace, `:`
/// separators and a leading `0x` are ignored, then [`decode`].
pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    let s: String = s.chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
    decode(s.strip_prefix("0x").unwrap_or(&s))
}

/// Serialises a byte vector as one hex string.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        super::unhex(&s).map_err(serde::de::Error::custom)
    }
}

/// Serialises a list of byte vectors as a list of hex strings.
pub mod hex_vec {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(&super::hex(b))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter().map(|s| super::unhex(s).map_err(serde::de::Error::custom)).collect()
    }
}

/// Serialises an optional byte vector as a hex string or null.
pub mod hex_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&super::hex(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| super::unhex(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_forms() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert_eq!(decode("00ab7F").unwrap(), vec![0x00, 0xab, 0x7f]);
        assert_eq!(unhex("0x0a:0b 0c").unwrap(), vec![10, 11, 12]);
        // The strict form takes no separators.
        assert!(decode("0a:0b").is_err());
    }

    #[test]
    fn hostile_text_is_an_error_not_a_panic() {
        // from_str_radix would read "+f" as 15; a pair must be two digits.
        assert!(decode("+f").is_err());
        // A multi-byte character across a digit pair.
        assert!(decode("a\u{e9}b").is_err());
        assert!(unhex("\u{e9}\u{e9}").is_err());
        assert!(decode("abc").is_err());
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
    }
}
