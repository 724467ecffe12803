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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Compatible,
    NotCompatible,
}

impl Verdict {
    /// Process exit code for the CLI: 0 compatible, 1 not compatible.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Compatible => 0,
            Verdict::NotCompatible => 1,
        }
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
    pub max_pkt_offset: Option<u64>,
    pub joined_instructions: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub program: String,
    pub profile: String,
    pub profile_is_assumption: bool,
    pub verdict: Verdict,
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
        let verdict = if findings.iter().any(|f| f.severity.blocks()) {
            Verdict::NotCompatible
        } else {
            Verdict::Compatible
        };
        Report { program, profile, profile_is_assumption, verdict, findings, stats }
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
            Verdict::Compatible => "compatible",
            Verdict::NotCompatible => "NOT compatible",
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
        if let Some(p) = st.max_pkt_offset {
            s += &format!(", max packet offset {p}");
        }
        s + "\n"
    }

    pub fn to_markdown(&self) -> String {
        let verdict = match self.verdict {
            Verdict::Compatible => "**compatible**",
            Verdict::NotCompatible => "**not compatible**",
        };
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
        s += &md_escape(&self.stats_line());
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
