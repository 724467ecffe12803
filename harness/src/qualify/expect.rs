//! Expected verdicts of a program on a capture: counts per verdict and/or
//! one verdict per packet, written inline in xdpqual.toml or read from a
//! `corpus/expect/*.toml` file, and checked against the engine's replay.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

/// The verdict labels an expectation may name (`Verdict::label`).
pub const LABELS: [&str; 8] =
    ["PASS", "DROP", "TX", "REDIRECT", "ABORTED", "NOT_RUN", "FAULT", "ERROR"];

/// Letters of a per-packet verdict string, as corpus/expect writes them
/// (F and E added for engine faults and backend errors).
const LETTERS: [(char, &str); 8] = [
    ('P', "PASS"),
    ('D', "DROP"),
    ('T', "TX"),
    ('R', "REDIRECT"),
    ('A', "ABORTED"),
    ('N', "NOT_RUN"),
    ('F', "FAULT"),
    ('E', "ERROR"),
];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaptureExpect {
    /// Exact count of every verdict; a verdict not named must not occur.
    pub counts: Option<BTreeMap<String, u64>>,
    /// Total packets, when given.
    pub packets: Option<u64>,
    /// One verdict label per packet, in capture order.
    pub verdicts: Option<Vec<String>>,
    /// Expected output frame (what test-run returns as data_out) of given
    /// packets, by 0-based index.
    pub outputs: BTreeMap<u64, Vec<u8>>,
}

fn label(s: &str) -> Option<&'static str> {
    let up = s.to_ascii_uppercase();
    LABELS.iter().copied().find(|l| *l == up.trim_start_matches("XDP_"))
}

fn letters(s: &str) -> Result<Vec<String>, String> {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| {
            LETTERS
                .iter()
                .find(|(l, _)| *l == c.to_ascii_uppercase())
                .map(|(_, n)| n.to_string())
                .ok_or_else(|| {
                    format!(
                        "'{c}' is not a verdict letter (letters: {})",
                        LETTERS
                            .iter()
                            .map(|(l, n)| format!("{l}={n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
        })
        .collect()
}

/// Parses one capture's inline table: `{ PASS = 10, DROP = 2 }`, with
/// optional `packets = N` and `verdicts = "PPD..."` or `["PASS", ...]`.
/// Errors carry the byte offset of the offending key or value.
pub fn from_table(
    t: &BTreeMap<Spanned<String>, Spanned<toml::Value>>,
) -> Result<CaptureExpect, (usize, String)> {
    let mut e = CaptureExpect::default();
    let mut counts = BTreeMap::new();
    for (k, v) in t {
        let at = k.span().start;
        match k.get_ref().as_str() {
            "verdicts" => {
                let list = match v.get_ref() {
                    toml::Value::String(s) => letters(s).map_err(|m| (v.span().start, m))?,
                    toml::Value::Array(a) => a
                        .iter()
                        .map(|x| {
                            x.as_str().and_then(label).map(str::to_string).ok_or_else(|| {
                                (
                                    v.span().start,
                                    format!(
                                        "{x} is not a verdict (verdicts: {})",
                                        LABELS.join(", ")
                                    ),
                                )
                            })
                        })
                        .collect::<Result<_, _>>()?,
                    _ => {
                        return Err((
                            v.span().start,
                            "`verdicts` is a string of letters or a list of verdict names".into(),
                        ))
                    }
                };
                e.verdicts = Some(list);
            }
            "packets" => e.packets = Some(count(v)?),
            "outputs" => {
                let bad = |m: String| (v.span().start, m);
                let toml::Value::Table(t) = v.get_ref() else {
                    return Err(bad("`outputs` is a table of packet index = \"hex bytes\"".into()));
                };
                for (idx, hex) in t {
                    let i: u64 = idx
                        .parse()
                        .map_err(|_| bad(format!("`outputs` key '{idx}' is not a packet index")))?;
                    let h = hex
                        .as_str()
                        .ok_or_else(|| bad(format!("`outputs.{idx}` must be a hex string")))?;
                    let bytes =
                        crate::util::unhex(h).map_err(|m| bad(format!("`outputs.{idx}`: {m}")))?;
                    e.outputs.insert(i, bytes);
                }
            }
            name => {
                let l = label(name).ok_or_else(|| {
                    (
                        at,
                        format!(
                            "'{name}' is not a verdict (verdicts: {}; or `packets`, `verdicts`)",
                            LABELS.join(", ")
                        ),
                    )
                })?;
                counts.insert(l.to_string(), count(v)?);
            }
        }
    }
    if !counts.is_empty() {
        e.counts = Some(counts);
    }
    if let (Some(n), Some(v)) = (e.packets, &e.verdicts) {
        if n != v.len() as u64 {
            return Err((
                t.keys().next().map_or(0, |k| k.span().start),
                format!("`packets = {n}` but `verdicts` lists {}", v.len()),
            ));
        }
    }
    Ok(e)
}

fn count(v: &Spanned<toml::Value>) -> Result<u64, (usize, String)> {
    v.get_ref()
        .as_integer()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| (v.span().start, format!("{} is not a packet count", v.get_ref())))
}

#[derive(Deserialize)]
struct CorpusFile {
    #[serde(default)]
    run: Vec<CorpusRun>,
}

#[derive(Deserialize)]
struct CorpusRun {
    config: String,
    entry: String,
    capture: String,
    packets: Option<u64>,
    #[serde(default)]
    counts: BTreeMap<String, u64>,
    verdicts: Option<String>,
}

/// Reads a corpus/expect file: the runs of one `config` and one entry
/// program, as (capture file name, expectation).
pub fn load_corpus_file(
    path: &Path,
    config: Option<&str>,
    section: Option<&str>,
) -> Result<Vec<(String, CaptureExpect)>, String> {
    let text = crate::util::input::read_text_limited(
        path,
        "expectation file",
        crate::util::input::MAX_CONFIG_BYTES,
    )
    .map_err(|e| format!("reading {}: {e}", path.display()))?;
    let f: CorpusFile = toml::from_str(&text).map_err(|e| {
        format!("{}: {}", path.display(), e.to_string().trim_end().replace('\n', " "))
    })?;
    let distinct = |get: fn(&CorpusRun) -> &str| {
        let mut v: Vec<&str> = f.run.iter().map(get).collect();
        v.sort();
        v.dedup();
        v
    };
    let configs = distinct(|r| &r.config);
    let config = match config {
        Some(c) if configs.contains(&c) => c,
        Some(c) => {
            return Err(format!(
                "{} has no config '{c}' (it has: {})",
                path.display(),
                configs.join(", ")
            ))
        }
        None if configs.len() == 1 => configs[0],
        None => {
            return Err(format!(
                "{} has several configs ({}); choose one with `expect_config`",
                path.display(),
                configs.join(", ")
            ))
        }
    };
    let entries = distinct(|r| &r.entry);
    let entry = match section {
        Some(s) => s,
        None if entries.len() == 1 => entries[0],
        None => {
            return Err(format!(
                "{} has several entry programs ({}); set the program's `section`",
                path.display(),
                entries.join(", ")
            ))
        }
    };
    let mut out = Vec::new();
    for r in f.run.iter().filter(|r| r.config == config && r.entry == entry) {
        let mut counts = BTreeMap::new();
        for (k, n) in &r.counts {
            let l =
                label(k).ok_or_else(|| format!("{}: '{k}' is not a verdict", path.display()))?;
            counts.insert(l.to_string(), *n);
        }
        let verdicts = r
            .verdicts
            .as_deref()
            .map(letters)
            .transpose()
            .map_err(|m| format!("{}: {m}", path.display()))?;
        out.push((
            r.capture.clone(),
            CaptureExpect {
                counts: Some(counts),
                packets: r.packets,
                verdicts,
                outputs: BTreeMap::new(),
            },
        ));
    }
    if out.is_empty() {
        return Err(format!(
            "{} has no runs for config '{config}' and entry '{entry}'",
            path.display()
        ));
    }
    Ok(out)
}

/// How the observed verdicts (one label per packet) compare.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// Empty when everything matched.
    pub problems: Vec<String>,
    /// Packets whose verdict differs: (index, expected, got).
    pub packets: Vec<(u64, String, String)>,
}

/// Compares expected output frames with what the engine produced (one
/// entry per packet, in capture order); one problem per differing packet.
pub fn judge_outputs(e: &CaptureExpect, outputs: &[Vec<u8>]) -> Vec<String> {
    e.outputs
        .iter()
        .filter_map(|(&i, want)| match outputs.get(i as usize) {
            None => Some(format!(
                "packet {i}: expected an output frame, the capture has {} packets",
                outputs.len()
            )),
            Some(got) if got != want => {
                let first = want
                    .iter()
                    .zip(got)
                    .position(|(a, b)| a != b)
                    .unwrap_or(want.len().min(got.len()));
                Some(format!(
                    "packet {i}: output differs from byte {first} (expected {} bytes, got {})",
                    want.len(),
                    got.len()
                ))
            }
            Some(_) => None,
        })
        .collect()
}

pub fn judge(e: &CaptureExpect, got: &[String]) -> Judgement {
    let mut problems = Vec::new();
    if let Some(n) = e.packets {
        if n != got.len() as u64 {
            problems.push(format!("expected {n} packets, the capture has {}", got.len()));
        }
    }
    if let Some(want) = &e.counts {
        let mut have: BTreeMap<String, u64> = BTreeMap::new();
        for g in got {
            *have.entry(g.clone()).or_default() += 1;
        }
        let mut keys: Vec<&String> = want.keys().chain(have.keys()).collect();
        keys.sort();
        keys.dedup();
        let diffs: Vec<String> = keys
            .into_iter()
            .filter_map(|k| {
                let (w, h) = (want.get(k).copied().unwrap_or(0), have.get(k).copied().unwrap_or(0));
                (w != h).then(|| format!("{k} expected {w}, got {h}"))
            })
            .collect();
        if !diffs.is_empty() {
            problems.push(format!("verdict counts differ: {}", diffs.join(", ")));
        }
    }
    let mut packets = Vec::new();
    if let Some(want) = &e.verdicts {
        if want.len() != got.len() {
            problems.push(format!(
                "the per-packet list has {} verdicts, the capture {} packets",
                want.len(),
                got.len()
            ));
        }
        for (i, (w, g)) in want.iter().zip(got).enumerate() {
            if w != g {
                packets.push((i as u64, w.clone(), g.clone()));
            }
        }
        if let Some((i, w, g)) = packets.first() {
            problems.push(format!(
                "{} packet verdicts differ; first: packet {i} expected {w}, got {g}",
                packets.len()
            ));
        }
    }
    Judgement { problems, packets }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(counts: &[(&str, u64)], verdicts: Option<&str>) -> CaptureExpect {
        CaptureExpect {
            counts: (!counts.is_empty())
                .then(|| counts.iter().map(|(k, v)| (k.to_string(), *v)).collect()),
            packets: None,
            verdicts: verdicts.map(|v| letters(v).unwrap()),
            outputs: BTreeMap::new(),
        }
    }

    fn got(s: &str) -> Vec<String> {
        letters(s).unwrap()
    }

    #[test]
    fn counts_must_match_exactly_including_unnamed_verdicts() {
        assert!(judge(&e(&[("PASS", 2), ("DROP", 1)], None), &got("PDP")).problems.is_empty());
        let j = judge(&e(&[("PASS", 2)], None), &got("PDP"));
        let mut with_out = e(&[], None);
        with_out.outputs.insert(1, vec![1, 2, 3]);
        assert!(judge_outputs(&with_out, &[vec![], vec![1, 2, 3]]).is_empty());
        let p = judge_outputs(&with_out, &[vec![], vec![1, 9, 3]]);
        assert_eq!(
            p,
            vec!["packet 1: output differs from byte 1 (expected 3 bytes, got 3)".to_string()]
        );
        assert_eq!(judge_outputs(&with_out, &[vec![]]).len(), 1);
        assert_eq!(j.problems, vec!["verdict counts differ: DROP expected 0, got 1".to_string()]);
        let j = judge(&e(&[("PASS", 3)], None), &got("PP"));
        assert_eq!(j.problems, vec!["verdict counts differ: PASS expected 3, got 2".to_string()]);
    }

    #[test]
    fn per_packet_lists_name_each_differing_packet() {
        let j = judge(&e(&[], Some("PPDT")), &got("PDDA"));
        assert_eq!(
            j.packets,
            vec![(1, "PASS".into(), "DROP".into()), (3, "TX".into(), "ABORTED".into())]
        );
        assert_eq!(
            j.problems,
            vec!["2 packet verdicts differ; first: packet 1 expected PASS, got DROP".to_string()]
        );
        assert!(judge(&e(&[], Some("PD")), &got("PDP")).problems[0]
            .contains("2 verdicts, the capture 3 packets"));
    }

    #[test]
    fn letters_reject_unknown() {
        assert!(letters("PX").unwrap_err().contains("'X'"));
    }
}
