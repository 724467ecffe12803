//! docs/offload-rules.md and the rule catalogue (`RuleId::ALL`) must not drift:
//! every rule the model can report has a table row there (with the right
//! "checked"/"not checked" label), and every rule ID the document names is one
//! the model defines.

use nic_model::rules::RuleId;
use std::collections::BTreeSet;

const DOC: &str = include_str!("../../docs/offload-rules.md");

/// Prefixes of rule IDs. An ID is a prefix followed by upper-case letters and
/// digits (NFP-T1, NSIM-M2, HXDP-C1, KERNEL-RESERVED, ANALYSIS-BUDGET).
const PREFIXES: &[&str] = &["NFP-", "NSIM-", "HXDP-", "KERNEL-", "ANALYSIS-"];

/// Every rule-ID-like token in `text`, in order. A token directly followed by
/// a lower-case letter or digit-letter mix (e.g. `NFP-S1a`) is returned whole,
/// so that a sub-ID the model does not define is caught, not silently cut.
/// `NFP-4000` (the chip) is not an ID: an ID has a letter right after the dash.
/// `NFP-T*` (a family) is returned with its star.
fn ids_in(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let prev_is_word = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        let hit = (!prev_is_word)
            .then(|| PREFIXES.iter().find(|p| b[i..].starts_with(p.as_bytes())))
            .flatten();
        let Some(p) = hit else {
            i += 1;
            continue;
        };
        let start = i;
        let mut j = i + p.len();
        if j >= b.len() || !b[j].is_ascii_uppercase() {
            i = j;
            continue;
        }
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'-') {
            j += 1;
        }
        // A trailing dash belongs to the prose ("NFP-T3-style"), not the ID.
        let mut end = j;
        while end > start && b[end - 1] == b'-' {
            end -= 1;
        }
        // `NFP-T*` names a family of rules; keep the star so it is checked as one.
        if end == j && j < b.len() && b[j] == b'*' {
            end += 1;
            j += 1;
        }
        out.push(text[start..end].to_string());
        i = j;
    }
    out
}

/// Whether `id` is a rule the model defines, or (`NFP-T*`) a family with at
/// least one such rule.
fn known(id: &str) -> bool {
    match id.strip_suffix('*') {
        Some(stem) => RuleId::ALL.iter().any(|r| r.id().starts_with(stem)),
        None => RuleId::from_id(id).is_some(),
    }
}

/// The table row of `id`: the line that starts with `| ID |`.
fn row<'a>(doc: &'a str, id: &str) -> Option<&'a str> {
    let head = format!("| {id} |");
    doc.lines().find(|l| l.starts_with(&head))
}

#[test]
fn scanner_finds_ids_and_only_ids() {
    // Checked on text whose answer is known, so the two tests below cannot pass
    // because the scanner finds nothing.
    let got = ids_in(
        "| NFP-T1 | x | see NFP-S2, (NFP-H4) and NSIM-M2; NFP-4000 chip; \
         KERNEL-RESERVED, ANALYSIS-BUDGET. NFP-S1a, XNFP-T2, HXDP-C1, the NFP-P* rules.",
    );
    assert_eq!(
        got,
        [
            "NFP-T1",
            "NFP-S2",
            "NFP-H4",
            "NSIM-M2",
            "KERNEL-RESERVED",
            "ANALYSIS-BUDGET",
            "NFP-S1a",
            "HXDP-C1",
            "NFP-P*"
        ]
    );
    assert!(!known("NFP-S1a"));
    assert!(known("NFP-P*"));
    assert!(!known("NFP-Q*"));
}

#[test]
fn every_rule_has_a_row_in_the_document() {
    let ids: BTreeSet<&str> = RuleId::ALL.iter().map(|r| r.id()).collect();
    assert_eq!(ids.len(), RuleId::ALL.len(), "duplicate rule IDs in RuleId::ALL");

    let mut missing = Vec::new();
    let mut wrong_label = Vec::new();
    for r in RuleId::ALL {
        match row(DOC, r.id()) {
            None => missing.push(r.id()),
            Some(line) => {
                // "*not checked*" must not be read as "*checked*": the asterisk
                // before "checked" only appears in the positive label.
                let says_checked = line.contains("*checked*");
                let says_not = line.contains("*not checked*");
                if says_checked == says_not || says_checked != r.checked_statically() {
                    wrong_label.push(format!(
                        "{} (checked_statically = {})",
                        r.id(),
                        r.checked_statically()
                    ));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "rules with no `| ID |` table row in docs/offload-rules.md: {missing:?}"
    );
    assert!(
        wrong_label.is_empty(),
        "rows whose *checked* / *not checked* label disagrees with RuleId::checked_statically(): {wrong_label:?}"
    );
}

#[test]
fn every_id_the_document_names_exists() {
    let named = ids_in(DOC);
    let distinct: BTreeSet<&str> = named.iter().map(String::as_str).collect();
    let unknown: Vec<&str> = distinct.iter().copied().filter(|id| !known(id)).collect();
    assert!(
        unknown.is_empty(),
        "docs/offload-rules.md names rule IDs the model does not define: {unknown:?}"
    );
    // Each rule has a row, so the document names at least every ID once.
    assert!(distinct.len() >= RuleId::ALL.len(), "found only {} IDs", distinct.len());
}
