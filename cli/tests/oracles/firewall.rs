//! corpus/firewall.c: VLAN tags, IPv4 (options, fragments), IPv6 extension
//! walk, static and map-driven blocklists; stats by verdict.

use super::*;

/// The blocklist configuration: entries added to the maps before replay.
pub(crate) struct Blocklist {
    /// (destination port, protocol)
    pub ports: &'static [(u16, u8)],
    pub v4: &'static [[u8; 4]],
    pub v6: &'static [[u8; 16]],
}

pub(crate) const EMPTY: Blocklist = Blocklist { ports: &[], v4: &[], v6: &[] };

/// Chosen to hit packets of the committed captures: TCP 8080 and UDP 123
/// appear in mixed-2k, 198.51.100.7 in firewall-2k, fd00::2:0:0:0:7 and
/// 10.0.7.9 in the edge capture.
pub(crate) const BLOCKLIST: Blocklist = Blocklist {
    ports: &[(8080, 6), (123, 17), (53, 6)],
    v4: &[[198, 51, 100, 7], [10, 0, 7, 9]],
    v6: &[[0xfd, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x07]],
};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            program: "firewall",
            entry: "xdp",
            config: "empty-maps",
            setup: vec![],
            oracle: || Box::new(Firewall::new(&EMPTY)),
        },
        Case {
            program: "firewall",
            entry: "xdp",
            config: "blocklist",
            setup: setup(&BLOCKLIST),
            oracle: || Box::new(Firewall::new(&BLOCKLIST)),
        },
    ]
}

fn setup(b: &Blocklist) -> Vec<Setup> {
    let mut v = Vec::new();
    for &(port, proto) in b.ports {
        // struct port_key { u16 port (host order); u8 proto; u8 pad = 0 }
        let mut key = port.to_le_bytes().to_vec();
        key.extend([proto, 0]);
        v.push(Setup::Update { map: "blocked_ports", key, value: vec![1] });
    }
    for a in b.v4 {
        v.push(Setup::Update { map: "blocked_v4", key: a.to_vec(), value: vec![1] });
    }
    for a in b.v6 {
        v.push(Setup::Update { map: "blocked_v6", key: a.to_vec(), value: vec![1] });
    }
    v
}

pub(crate) struct Firewall {
    list: &'static Blocklist,
    drops: u64,
    passes: u64,
}

impl Firewall {
    pub(crate) fn new(list: &'static Blocklist) -> Firewall {
        Firewall { list, drops: 0, passes: 0 }
    }
}

impl Oracle for Firewall {
    fn run(&mut self, p: &Pkt) -> Expect {
        let v = if verdict(p.lin(), self.list) { Verdict::Drop } else { Verdict::Pass };
        match v {
            Verdict::Drop => self.drops += 1,
            _ => self.passes += 1,
        }
        Expect::unchanged(v, p)
    }

    /// stats: slot 1 counts drops, slot 2 passes, the others stay 0.
    fn expected_maps(&self) -> Vec<MapExpect> {
        [(0u32, 0u64), (1, self.drops), (2, self.passes), (3, 0), (4, 0)]
            .into_iter()
            .map(|(k, n)| MapExpect {
                map: "stats".into(),
                key: k.to_le_bytes().to_vec(),
                value: n.to_le_bytes().to_vec(),
            })
            .collect()
    }
}

const DROP: bool = true;
const PASS: bool = false;

fn is_vlan(e: u16) -> bool {
    e == 0x8100 || e == 0x88A8
}

/// true = DROP. Rules numbered as in the specification.
fn verdict(f: &[u8], list: &Blocklist) -> bool {
    let l = f.len();
    // 1.
    if l < 14 {
        return DROP;
    }
    // 2.
    let mut e = be16(f, 12);
    let mut h = 14;
    for _ in 0..2 {
        if !is_vlan(e) {
            break;
        }
        if h + 4 > l {
            return DROP;
        }
        e = be16(f, h + 2);
        h += 4;
    }
    if is_vlan(e) {
        return DROP;
    }
    match e {
        0x0806 => PASS,
        0x0800 => {
            if h + 20 > l || f[h] >> 4 != 4 {
                return DROP;
            }
            let ihl = (f[h] & 0xF) as usize;
            if ihl < 5 || h + 4 * ihl > l {
                return DROP;
            }
            let src: [u8; 4] = f[h + 12..h + 16].try_into().unwrap();
            if src == [192, 0, 2, 66] || list.v4.contains(&src) {
                return DROP;
            }
            if be16(f, h + 6) & 0x1FFF != 0 {
                return DROP;
            }
            l4(f, f[h + 9], h + 4 * ihl, false, list)
        }
        0x86DD => {
            if h + 40 > l || f[h] >> 4 != 6 {
                return DROP;
            }
            let src: [u8; 16] = f[h + 8..h + 24].try_into().unwrap();
            let special = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x66).octets();
            if src == special || list.v6.contains(&src) {
                return DROP;
            }
            let mut n = f[h + 6];
            let mut p = h + 40;
            for _ in 0..6 {
                match n {
                    0 | 43 | 60 => {
                        if p + 2 > l {
                            return DROP;
                        }
                        let len = (f[p + 1] as usize + 1) * 8;
                        if p + len > l {
                            return DROP;
                        }
                        n = f[p];
                        p += len;
                    }
                    44 => {
                        if p + 8 > l {
                            return DROP;
                        }
                        if be16(f, p + 2) >> 3 != 0 {
                            return DROP;
                        }
                        n = f[p];
                        p += 8;
                    }
                    _ => break,
                }
            }
            if matches!(n, 0 | 43 | 44 | 60) {
                return DROP;
            }
            l4(f, n, p, true, list)
        }
        _ => PASS,
    }
}

fn l4(f: &[u8], proto: u8, p: usize, v6: bool, list: &Blocklist) -> bool {
    let l = f.len();
    match proto {
        6 | 17 => {
            let need = if proto == 6 { 20 } else { 8 };
            if p + need > l {
                return DROP;
            }
            let dport = be16(f, p + 2);
            if [23, 445, 3389].contains(&dport) || list.ports.contains(&(dport, proto)) {
                return DROP;
            }
            PASS
        }
        1 if !v6 => p + 4 > l || f[p] == 5,
        58 if v6 => p + 4 > l || f[p] == 137,
        _ => PASS,
    }
}
