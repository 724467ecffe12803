//! Findings, the verdict, and their text / JSON / Markdown renderings.

use crate::rules::RuleId;
use serde::Serialize;

/// How sure a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The program definitely breaks the rule: the target rejects it.
    Violates,
    /// The checker cannot prove the rule holds; the target's own check
    /// (which also needs a proof) would most likely reject it.
    CannotProve,
    /// Accepted, but the NIC behaves differently from the host (or a later
    /// configuration change would be refused).
    BehaviourDiffers,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Violates => "violates",
            Severity::CannotProve => "cannot prove",
            Severity::BehaviourDiffers => "behaves differently",
        }
    }
    /// Whether this finding makes the program not compatible.
    pub fn blocks(self) -> bool {
        !matches!(self, Severity::BehaviourDiffers)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: RuleId,
    pub severity: Severity,
    /// The target's own message (kernel log / extack / dmesg), as quoted in
    /// docs/offload-rules.md.
    pub message: String,
    /// Why the checker says so, in its own words.
    pub detail: String,
    pub insn: Option<usize>,
    pub source_line: Option<String>,
    pub disasm: Option<String>,
}

/// Whether a program can be offloaded: the one verdict every output
/// (offload-check, qualify, the dashboard, the history) shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Offloadability {
    /// Accepted, and the NIC runs it as the host would.
    Offloadable,
    /// Accepted, but some run-time path differs from the host: a helper that
    /// returns -EINVAL on the NIC (NFP-H4 slow path, NFP-H5), an action the
    /// NIC turns into an abort (NFP-R1), asynchronous events (NFP-H6), an
    /// MTU that cannot be raised later (NFP-M7). The program must handle
    /// the fallback; the findings name each one.
    OffloadableWithFallback,
    /// The target (or the host kernel's verifier before it) refuses it.
    NotOffloadable,
}

impl Offloadability {
    /// Process exit code for the CLI: 0 offloadable (with or without a
    /// run-time fallback: the program loads), 1 not offloadable.
    pub fn exit_code(self) -> i32 {
        match self {
            Offloadability::Offloadable | Offloadability::OffloadableWithFallback => 0,
            Offloadability::NotOffloadable => 1,
        }
    }

    /// Whether the target accepts the program.
    pub fn loads(self) -> bool {
        self != Offloadability::NotOffloadable
    }

    /// `offloadable`, `offloadable with run-time fallback`, `not offloadable`.
    pub fn label(self) -> &'static str {
        match self {
            Offloadability::Offloadable => "offloadable",
            Offloadability::OffloadableWithFallback => "offloadable with run-time fallback",
            Offloadability::NotOffloadable => "not offloadable",
        }
    }

    /// The verdict that `findings` make.
    pub fn of(findings: &[Finding]) -> Offloadability {
        if findings.iter().any(|f| f.severity.blocks()) {
            Offloadability::NotOffloadable
        } else if findings.is_empty() {
            Offloadability::Offloadable
        } else {
            Offloadability::OffloadableWithFallback
        }
    }
}

impl std::fmt::Display for Offloadability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// `n` and the noun, singular for one: "1 finding", "2 findings".
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Estimates and facts the checker computed, for the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub insns: usize,
    pub reachable_insns: usize,
    /// NFP instructions (nfp family) or VLIW rows (hxdp), if the profile limits code size.
    pub code_size_estimate: Option<u64>,
    pub code_size_lower_bound: Option<u64>,
    pub code_size_limit: Option<u64>,
    pub stack_bytes: Option<u64>,
    /// The furthest packet byte reached; `None` when it could not be
    /// bounded (then `max_pkt_offset_unbounded`) or was not computed.
    pub max_pkt_offset: Option<u64>,
    /// Some packet access has no bound the analysis (and so the
    /// verifier's `MAX_PACKET_OFF` rule) could establish.
    pub max_pkt_offset_unbounded: bool,
    pub joined_instructions: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub program: String,
    pub profile: String,
    pub profile_is_assumption: bool,
    pub verdict: Offloadability,
    pub findings: Vec<Finding>,
    pub stats: Stats,
}

impl Report {
    pub fn new(
        program: String,
        profile: String,
        profile_is_assumption: bool,
        mut findings: Vec<Finding>,
        stats: Stats,
    ) -> Report {
        findings.sort_by_key(|a| (a.insn, a.rule, a.severity));
        findings.dedup_by(|a, b| a.rule == b.rule && a.insn == b.insn && a.message == b.message);
        let verdict = Offloadability::of(&findings);
        Report { program, profile, profile_is_assumption, verdict, findings, stats }
    }

    /// Adds a finding made outside the checker (the host kernel's
    /// verifier, say) and recomputes the verdict.
    pub fn add_finding(&mut self, f: Finding) {
        self.findings.push(f);
        self.findings.sort_by_key(|a| (a.insn, a.rule, a.severity));
        self.verdict = Offloadability::of(&self.findings);
    }

    /// The rules behind a run-time fallback (behaves-differently findings),
    /// sorted and de-duplicated.
    pub fn fallback_rules(&self) -> Vec<RuleId> {
        let mut v: Vec<RuleId> = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::BehaviourDiffers)
            .map(|f| f.rule)
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The verdict in words, with the rules that make a fallback:
    /// `offloadable with run-time fallback (NFP-H4)`.
    pub fn verdict_line(&self) -> String {
        match self.verdict {
            Offloadability::OffloadableWithFallback => {
                let rules: Vec<&str> = self.fallback_rules().iter().map(|r| r.id()).collect();
                format!("{} ({})", self.verdict, rules.join(", "))
            }
            v => v.to_string(),
        }
    }

    /// Rule IDs of all findings, sorted and de-duplicated.
    pub fn rule_ids(&self) -> Vec<RuleId> {
        let mut v: Vec<RuleId> = self.findings.iter().map(|f| f.rule).collect();
        v.sort();
        v.dedup();
        v
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let verdict = match self.verdict {
            Offloadability::NotOffloadable => "NOT offloadable".to_string(),
            _ => self.verdict_line(),
        };
        s += &format!("program `{}` on profile `{}`: {verdict}\n", self.program, self.profile);
        if self.profile_is_assumption {
            s += "  (this profile is an assumption, see its description)\n";
        }
        for f in &self.findings {
            s += &format!("{} [{}] {}", f.rule, f.severity.label(), f.message);
            if let Some(i) = f.insn {
                s += &format!(" at insn {i}");
            }
            if let Some(l) = &f.source_line {
                s += &format!(" ({l})");
            }
            s += "\n";
            if let Some(d) = &f.disasm {
                s += &format!("    {d}\n");
            }
            if !f.detail.is_empty() {
                s += &format!("    {}\n", f.detail);
            }
        }
        s += &self.stats_line();
        s
    }

    fn stats_line(&self) -> String {
        let st = &self.stats;
        let mut s = format!("{} insns ({} reachable)", st.insns, st.reachable_insns);
        if let (Some(e), Some(l)) = (st.code_size_estimate, st.code_size_limit) {
            s += &format!(", code size estimate {e} of {l}");
        }
        if let Some(b) = st.stack_bytes {
            s += &format!(", stack {b} B");
        }
        if st.max_pkt_offset_unbounded {
            s += ", max packet offset unbounded";
        } else if let Some(p) = st.max_pkt_offset {
            s += &format!(", max packet offset {p}");
        }
        s + "\n"
    }

    pub fn to_markdown(&self) -> String {
        let verdict = format!("**{}**", md_escape(&self.verdict_line()));
        let mut s = format!(
            "### Offload check: `{}` on `{}`\n\nVerdict: {verdict}\n\n",
            md_code(&self.program),
            md_code(&self.profile)
        );
        if self.profile_is_assumption {
            s += "_The profile is an assumption; see its description._\n\n";
        }
        if !self.findings.is_empty() {
            s += "| Rule | Severity | Insn | Source | Instruction | Message |\n|---|---|---|---|---|---|\n";
            for f in &self.findings {
                s += &format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    f.rule,
                    f.severity.label(),
                    f.insn.map(|i| i.to_string()).unwrap_or_default(),
                    f.source_line.as_deref().map(md_escape).unwrap_or_default(),
                    f.disasm.as_deref().map(md_escape).unwrap_or_default(),
                    md_escape(format!("{} {}", f.message, f.detail).trim()),
                );
            }
            s += "\n";
        }
        // The stats line's own newline is escaped to a space: end the
        // paragraph (and the output) with one.
        s += md_escape(&self.stats_line()).trim_end();
        s += "\n";
        s
    }
}

/// Escape text for a Markdown table cell: HTML-significant characters, pipes,
/// backticks and emphasis markers, and newlines.
pub fn md_escape(t: &str) -> String {
    let mut o = String::with_capacity(t.len());
    for ch in t.chars() {
        match ch {
            '<' => o += "&lt;",
            '>' => o += "&gt;",
            '&' => o += "&amp;",
            '|' => o += "\\|",
            '`' => o += "\\`",
            '*' => o += "\\*",
            '_' => o += "\\_",
            '[' => o += "\\[",
            ']' => o += "\\]",
            '\\' => o += "\\\\",
            '\n' | '\r' => o += " ",
            c => o.push(c),
        }
    }
    o
}

/// Text placed inside a code span: backticks cannot be escaped there, so they
/// are replaced; the rest needs only pipe and newline handling.
fn md_code(t: &str) -> String {
    t.replace('`', "'").replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes_program_text() {
        assert_eq!(md_escape("a<b>&c|d`e"), "a&lt;b&gt;&amp;c\\|d\\`e");
        let f = Finding {
            rule: RuleId::P4,
            severity: Severity::Violates,
            message: "map flags are not supported".into(),
            detail: "map `x|<y>` has flags".into(),
            insn: None,
            source_line: None,
            disasm: None,
        };
        let r = Report::new("p|`q`".into(), "nfp-corenic".into(), false, vec![f], Stats::default());
        let md = r.to_markdown();
        assert!(md.contains("map \\`x\\|&lt;y&gt;\\` has flags"), "{md}");
        assert!(md.contains("`p\\|'q'`"), "{md}");
        assert!(!md.contains("<y>"));
    }
}
