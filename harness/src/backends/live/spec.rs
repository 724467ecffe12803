//! How a live backend is named (`live:IFACE[:MODE]`) and the attach modes:
//! plain data, apart from the live machinery, so that the backend names
//! ([`crate::backends::kind`]) can include it without depending on it.

use std::fmt;

/// How the program is attached (`XDP_FLAGS_*_MODE`, include/uapi/linux/if_link.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Generic XDP, on the skb in the stack's receive path.
    Skb,
    /// Native XDP in the driver.
    Drv,
    /// Offloaded to the NIC.
    Hw,
}

impl XdpMode {
    pub fn flag(self) -> u32 {
        match self {
            XdpMode::Skb => 1 << 1,
            XdpMode::Drv => 1 << 2,
            XdpMode::Hw => 1 << 3,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            XdpMode::Skb => "skb",
            XdpMode::Drv => "drv",
            XdpMode::Hw => "hw",
        }
    }
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for XdpMode {
    type Err = String;
    fn from_str(s: &str) -> Result<XdpMode, String> {
        match s {
            "skb" | "generic" => Ok(XdpMode::Skb),
            "drv" | "native" => Ok(XdpMode::Drv),
            "hw" | "offload" => Ok(XdpMode::Hw),
            o => Err(format!("unknown XDP mode '{o}' (known: skb, drv, hw)")),
        }
    }
}

/// `live:IFACE[:MODE]` as a backend name; the mode defaults to `drv`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LiveSpec {
    pub iface: String,
    pub mode: XdpMode,
}

impl std::str::FromStr for LiveSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<LiveSpec, String> {
        let rest = s.strip_prefix("live:").ok_or_else(|| {
            format!("'{s}' is not a live backend (expected live:IFACE[:skb|drv|hw])")
        })?;
        let (iface, mode) = match rest.split_once(':') {
            Some((i, m)) => (i, m.parse()?),
            None => (rest, XdpMode::Drv),
        };
        if iface.is_empty()
            || iface.len() > 15
            || iface.contains('/')
            || iface.contains(char::is_whitespace)
        {
            return Err(format!(
                "'{iface}' is not a valid interface name (1 to 15 characters, no '/' or spaces)"
            ));
        }
        Ok(LiveSpec { iface: iface.to_string(), mode })
    }
}
