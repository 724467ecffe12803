//! Reading and writing captures: hand-built pcap/pcapng files with
//! expectations worked out by hand, hostile files, and write/read round trips.

use std::io::Cursor;
use std::path::PathBuf;

use xdpqual::capture::linktype::RawIpNumber;
use xdpqual::capture::{
    write_pcap, CaptureError, CaptureFormat, CaptureReader, LinkType, Packet, PcapFileWriter,
    TsPrecision,
};
use xdpqual::pcapgen::{generate_packets, Profile};

fn open(bytes: Vec<u8>) -> Result<CaptureReader, CaptureError> {
    CaptureReader::from_reader("test.pcap", Cursor::new(bytes))
}

fn read_all(bytes: Vec<u8>) -> (Vec<Packet>, Option<CaptureError>) {
    let mut ok = Vec::new();
    let mut r = open(bytes).expect("header is valid");
    let mut err = None;
    for item in r.by_ref() {
        match item {
            Ok(p) => ok.push(p),
            Err(e) => err = Some(e),
        }
    }
    assert!(r.next().is_none(), "the reader stays finished");
    (ok, err)
}

fn scratch_dir(name: &str) -> PathBuf {
    let d =
        std::env::temp_dir().join(format!("xdpqual-capture-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

// ---------- pcap, built byte by byte ----------

fn pcap_header(magic_be: u32, big_endian: bool, linktype: u32) -> Vec<u8> {
    let mut h = Vec::new();
    let w32 = |h: &mut Vec<u8>, v: u32| {
        h.extend_from_slice(&if big_endian { v.to_be_bytes() } else { v.to_le_bytes() })
    };
    w32(&mut h, magic_be);
    let (maj, min) = (2u16, 4u16);
    h.extend_from_slice(&if big_endian { maj.to_be_bytes() } else { maj.to_le_bytes() });
    h.extend_from_slice(&if big_endian { min.to_be_bytes() } else { min.to_le_bytes() });
    w32(&mut h, 0); // thiszone
    w32(&mut h, 0); // sigfigs
    w32(&mut h, 65535); // snaplen
    w32(&mut h, linktype);
    h
}

fn pcap_record(big_endian: bool, sec: u32, frac: u32, data: &[u8], orig_len: u32) -> Vec<u8> {
    let mut r = Vec::new();
    for v in [sec, frac, data.len() as u32, orig_len] {
        r.extend_from_slice(&if big_endian { v.to_be_bytes() } else { v.to_le_bytes() });
    }
    r.extend_from_slice(data);
    r
}

#[test]
fn big_endian_microsecond_pcap() {
    let mut f = pcap_header(0xa1b2c3d4, true, 1);
    assert_eq!(&f[..4], &[0xa1, 0xb2, 0xc3, 0xd4]);
    let frame: Vec<u8> = (0u8..20).collect();
    f.extend(pcap_record(true, 1, 2, &frame, 60));
    f.extend(pcap_record(true, 4, 999_999, &frame[..14], 14));
    let r = open(f.clone()).unwrap();
    assert_eq!(r.format(), CaptureFormat::Pcap { nanosecond: false, big_endian: true });
    let (pkts, err) = read_all(f);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pkts.len(), 2);
    assert_eq!(
        pkts[0],
        Packet {
            index: 0,
            ts_ns: 1_000_002_000,
            data: frame.clone(),
            orig_len: 60,
            truncated: true,
            interface: 0,
            link: LinkType::Ethernet
        }
    );
    assert_eq!((pkts[1].index, pkts[1].ts_ns, pkts[1].truncated), (1, 4_999_999_000, false));
}

#[test]
fn little_endian_nanosecond_pcap() {
    let mut f = pcap_header(0xa1b23c4d, false, 1);
    assert_eq!(&f[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
    f.extend(pcap_record(false, 3, 7, &[9; 14], 14));
    let r = open(f.clone()).unwrap();
    assert_eq!(r.format(), CaptureFormat::Pcap { nanosecond: true, big_endian: false });
    let (pkts, err) = read_all(f);
    assert!(err.is_none());
    assert_eq!((pkts[0].ts_ns, pkts[0].data.clone()), (3_000_000_007, vec![9; 14]));
}

#[test]
fn sll_pcap_is_converted_with_one_notice() {
    let mut f = pcap_header(0xa1b2c3d4, false, 113);
    // SLL: pkttype 0, ARPHRD_ETHER, addr len 6, addr + 2 pad, protocol 0x0800; then 4 IP bytes.
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&[0x45, 0, 0, 20]);
    f.extend(pcap_record(false, 0, 0, &sll, 40));
    f.extend(pcap_record(false, 0, 1, &sll, 20));
    let mut r = open(f).unwrap();
    let notices = r.take_notices();
    assert_eq!(notices.len(), 1);
    assert!(notices[0].to_string().contains("link type 113 (LINUX_SLL)"), "{}", notices[0]);
    let p: Vec<Packet> = r.by_ref().map(Result::unwrap).collect();
    let want = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00, 0x45, 0, 0, 20];
    assert_eq!(p[0].data, want);
    assert_eq!((p[0].orig_len, p[0].truncated, p[0].link), (38, true, LinkType::LinuxSll));
    assert_eq!((p[1].orig_len, p[1].truncated), (18, false));
    assert!(r.take_notices().is_empty(), "the notice is given once per file");
}

#[test]
fn unsupported_link_type_is_named() {
    let err = open(pcap_header(0xa1b2c3d4, false, 105)).err().expect("802.11 is refused");
    let msg = err.to_string();
    assert!(
        msg.contains("link type 105 (IEEE802_11) is not Ethernet; xdpqual replays Ethernet, SLL/SLL2 and raw-IP captures"),
        "{msg}"
    );
    assert!(msg.contains("test.pcap"));
}

#[test]
fn hostile_caplen_ends_the_file_keeping_earlier_packets() {
    let mut f = pcap_header(0xa1b2c3d4, false, 1);
    f.extend(pcap_record(false, 0, 0, &[1; 14], 14));
    // caplen 0x7fffffff with no data behind it.
    for v in [0u32, 0, 0x7fff_ffff, 0x7fff_ffff] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    let (pkts, err) = read_all(f);
    assert_eq!(pkts.len(), 1);
    match err {
        Some(CaptureError::CaplenTooLarge { pos, caplen, max }) => {
            assert_eq!(
                (pos.index, pos.offset, caplen, max),
                (1, 24 + 16 + 14, 0x7fff_ffff, 262_144)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_records_are_reported_with_position() {
    let mut f = pcap_header(0xa1b2c3d4, false, 1);
    f.extend(pcap_record(false, 0, 0, &[1; 100], 100));
    f.truncate(24 + 16 + 10);
    let (pkts, err) = read_all(f);
    assert!(pkts.is_empty());
    let err = err.unwrap();
    assert!(
        matches!(&err, CaptureError::Truncated { pos, needed: 116, available: 26 } if pos.offset == 24),
        "{err:?}"
    );
    assert!(err.to_string().contains("test.pcap: packet 0 (record at byte offset 24)"), "{err}");

    // A partial record header.
    let mut f = pcap_header(0xa1b2c3d4, false, 1);
    f.extend_from_slice(&[0; 8]);
    let (_, err) = read_all(f);
    assert!(
        matches!(err, Some(CaptureError::Truncated { needed: 16, available: 8, .. })),
        "{err:?}"
    );
}

#[test]
fn not_a_capture() {
    for bytes in [b"hello world".to_vec(), vec![], vec![0xa1, 0xb2]] {
        assert!(matches!(open(bytes), Err(CaptureError::NotACapture { .. })));
    }
    // Right magic, header cut short.
    let h = pcap_header(0xa1b2c3d4, false, 1);
    assert!(matches!(open(h[..20].to_vec()), Err(CaptureError::BadHeader { .. })));
}

// ---------- pcapng, built byte by byte ----------

struct Ng {
    le: bool,
    out: Vec<u8>,
}

impl Ng {
    fn u16(&self, v: u16) -> [u8; 2] {
        if self.le {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    }
    fn u32(&self, v: u32) -> [u8; 4] {
        if self.le {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    }
    fn block(&mut self, ty: u32, body: &[u8]) {
        let mut b = body.to_vec();
        while b.len() & 3 != 0 {
            b.push(0);
        }
        let total = 12 + b.len() as u32;
        let (t, l) = (self.u32(ty), self.u32(total));
        self.out.extend_from_slice(&t);
        self.out.extend_from_slice(&l);
        self.out.extend_from_slice(&b);
        self.out.extend_from_slice(&l);
    }
    fn shb(&mut self, le: bool) {
        self.le = le;
        let mut b = self.u32(0x1a2b3c4d).to_vec();
        b.extend_from_slice(&self.u16(1));
        b.extend_from_slice(&self.u16(0));
        b.extend_from_slice(&[0xff; 8]); // section length -1: unknown
        self.block(0x0a0d0d0a, &b);
    }
    fn idb(&mut self, linktype: u16, tsresol: Option<u8>) {
        let mut b = self.u16(linktype).to_vec();
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&self.u32(65535));
        if let Some(r) = tsresol {
            b.extend_from_slice(&self.u16(9));
            b.extend_from_slice(&self.u16(1));
            b.extend_from_slice(&[r, 0, 0, 0]);
            b.extend_from_slice(&[0; 4]); // opt_endofopt
        }
        self.block(1, &b);
    }
    fn epb(&mut self, iface: u32, ts: u64, data: &[u8], orig_len: u32) {
        let mut b = self.u32(iface).to_vec();
        b.extend_from_slice(&self.u32((ts >> 32) as u32));
        b.extend_from_slice(&self.u32(ts as u32));
        b.extend_from_slice(&self.u32(data.len() as u32));
        b.extend_from_slice(&self.u32(orig_len));
        b.extend_from_slice(data);
        self.block(6, &b);
    }
    fn spb(&mut self, data: &[u8]) {
        let mut b = self.u32(data.len() as u32).to_vec();
        b.extend_from_slice(data);
        self.block(3, &b);
    }
}

fn eth_header(ethertype: u16) -> Vec<u8> {
    let mut v = vec![0u8; 12];
    v.extend_from_slice(&ethertype.to_be_bytes());
    v
}

#[test]
fn pcapng_two_sections_interfaces_link_types_and_resolutions() {
    let ipv4 = [0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
    let ipv6_start = [0x60u8, 0, 0, 0, 0, 0, 59, 64];
    let eth_frame: Vec<u8> = (100u8..120).collect();

    let mut ng = Ng { le: true, out: Vec::new() };
    ng.shb(true);
    ng.idb(1, None); // Ethernet, default microseconds
    ng.idb(101, Some(9)); // raw IP, nanoseconds
    ng.epb(1, 5_000_000_123, &ipv4, 20);
    ng.block(0x0000_0bad, &[1, 2, 3, 4]); // unknown block type: skipped
    ng.epb(0, 2_000_000, &eth_frame, 60);
    ng.spb(&eth_frame[..16]);
    ng.shb(false); // second section, big-endian
    let mut sll2 = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 4, 6, 9, 9, 9, 9, 9, 9, 0, 0];
    sll2.extend_from_slice(&ipv6_start);
    ng.idb(276, Some(0x80 | 10)); // SLL2, 2^-10 s units
    ng.epb(0, 2048, &sll2, sll2.len() as u32);
    assert_eq!(&ng.out[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);

    let mut r = open(ng.out.clone()).unwrap();
    assert_eq!(r.format(), CaptureFormat::PcapNg);
    let pkts: Vec<Packet> = r.by_ref().map(|p| p.unwrap()).collect();
    assert_eq!(pkts.len(), 4);

    let mut want0 = eth_header(0x0800);
    want0.extend_from_slice(&ipv4);
    assert_eq!(
        pkts[0],
        Packet {
            index: 0,
            ts_ns: 5_000_000_123,
            data: want0,
            orig_len: 34,
            truncated: false,
            interface: 1,
            link: LinkType::RawIp(RawIpNumber::Linktype101)
        }
    );
    assert_eq!(
        pkts[1],
        Packet {
            index: 1,
            ts_ns: 2_000_000_000,
            data: eth_frame.clone(),
            orig_len: 60,
            truncated: true,
            interface: 0,
            link: LinkType::Ethernet
        }
    );
    // Simple packet block: interface 0, previous timestamp.
    assert_eq!(
        (pkts[2].interface, pkts[2].ts_ns, pkts[2].data.as_slice()),
        (0, 2_000_000_000, &eth_frame[..16])
    );
    // Second section's first interface is the file's third.
    let mut want3 = eth_header(0x86dd);
    want3.extend_from_slice(&ipv6_start);
    assert_eq!(
        (pkts[3].interface, pkts[3].ts_ns, &pkts[3].data, pkts[3].link),
        (2, 2_000_000_000, &want3, LinkType::LinuxSll2)
    );
    let notices: Vec<String> = r.take_notices().iter().map(|n| n.to_string()).collect();
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(
        notices[0].contains("link type 101 (RAW)")
            && notices[1].contains("link type 276 (LINUX_SLL2)")
    );
}

#[test]
fn pcapng_bad_interface_and_unsupported_link_keep_earlier_packets() {
    let mut ng = Ng { le: true, out: Vec::new() };
    ng.shb(true);
    ng.idb(1, None);
    ng.idb(105, None); // 802.11: fine until a packet uses it
    ng.epb(0, 1, &[0; 14], 14);
    ng.epb(1, 2, &[0; 14], 14);
    let (pkts, err) = read_all(ng.out);
    assert_eq!(pkts.len(), 1);
    let msg = err.unwrap().to_string();
    assert!(msg.contains("interface 1: link type 105 (IEEE802_11) is not Ethernet"), "{msg}");

    let mut ng = Ng { le: false, out: Vec::new() };
    ng.shb(false);
    ng.idb(1, None);
    ng.epb(5, 1, &[0; 14], 14);
    let (pkts, err) = read_all(ng.out);
    assert!(pkts.is_empty());
    let msg = err.unwrap().to_string();
    assert!(msg.contains("interface 5") && msg.contains("byte offset 48"), "{msg}");
}

#[test]
fn pcapng_hostile_lengths() {
    // An enhanced packet block claiming a 1 GiB block.
    let mut ng = Ng { le: true, out: Vec::new() };
    ng.shb(true);
    ng.idb(1, None);
    ng.out.extend_from_slice(&6u32.to_le_bytes());
    ng.out.extend_from_slice(&(1u32 << 30).to_le_bytes());
    ng.out.extend_from_slice(&[0; 32]);
    let (_, err) = read_all(ng.out);
    assert!(err.unwrap().to_string().contains("exceeds"));

    // A captured length larger than MAX_CAPLEN inside a plausible block.
    let mut ng = Ng { le: true, out: Vec::new() };
    ng.shb(true);
    ng.idb(1, None);
    let mut body = vec![0u8; 8];
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&300_000u32.to_le_bytes());
    body.extend_from_slice(&300_000u32.to_le_bytes());
    ng.block(6, &body);
    let (_, err) = read_all(ng.out);
    assert!(matches!(err, Some(CaptureError::CaplenTooLarge { caplen: 300_000, .. })), "{err:?}");
}

// ---------- writer ----------

#[test]
fn generated_packets_round_trip_byte_identical() {
    let dir = scratch_dir("roundtrip");
    let gen: Vec<_> = generate_packets(Profile::Mixed, 2000, 1).collect();
    for (precision, name) in
        [(TsPrecision::Microsecond, "us.pcap"), (TsPrecision::Nanosecond, "ns.pcap")]
    {
        let path = dir.join(name);
        let n = write_pcap(&path, precision, gen.iter().map(|p| (p.ts_ns, &p.bytes))).unwrap();
        assert_eq!(n, 2000);
        let r = CaptureReader::open(&path).unwrap();
        assert_eq!(
            r.format(),
            CaptureFormat::Pcap {
                nanosecond: precision == TsPrecision::Nanosecond,
                big_endian: false
            }
        );
        let mut count = 0;
        for (got, want) in r.zip(&gen) {
            let got = got.unwrap();
            assert_eq!(got.index, want.index);
            assert_eq!(got.data, want.bytes, "packet {}", want.index);
            assert_eq!(got.ts_ns, want.ts_ns);
            assert_eq!((got.orig_len as usize, got.truncated), (want.bytes.len(), false));
            count += 1;
        }
        assert_eq!(count, 2000);
    }
    // Sub-microsecond timestamps: kept by nanosecond files, truncated by microsecond ones.
    let ts = 1_000_000_123u64;
    for (precision, want) in
        [(TsPrecision::Microsecond, 1_000_000_000), (TsPrecision::Nanosecond, ts)]
    {
        let path = dir.join("sub-us.pcap");
        write_pcap(&path, precision, [(ts, vec![0u8; 14])]).unwrap();
        let p = CaptureReader::open(&path).unwrap().next().unwrap().unwrap();
        assert_eq!(p.ts_ns, want);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn writes_are_atomic() {
    let dir = scratch_dir("atomic");
    let path = dir.join("out.pcap");
    std::fs::write(&path, b"old contents").unwrap();
    {
        let mut w = PcapFileWriter::create(&path, TsPrecision::Microsecond).unwrap();
        w.write(0, &[0; 14]).unwrap();
        // Dropped without finish: the old file stays, the temporary file goes.
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"old contents");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left behind");
    let mut w = PcapFileWriter::create(&path, TsPrecision::Microsecond).unwrap();
    w.write(0, &[0; 14]).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"old contents", "not replaced before finish");
    w.finish().unwrap();
    assert_eq!(std::fs::read(&path).unwrap().len(), 24 + 16 + 14);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    // Over-long frames are refused rather than written with a lying header.
    let mut w = PcapFileWriter::create(dir.join("big.pcap"), TsPrecision::Microsecond).unwrap();
    assert!(w.write(0, &vec![0; 262_145]).is_err());
    std::fs::remove_dir_all(dir).unwrap();
}
