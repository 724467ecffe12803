//! Qualification history and baselines in SQLite (results/history.sqlite
//! by default).
//!
//! Schema version 2 (`PRAGMA user_version`):
//! - `runs`: one row per qualification (a merged sharded one counts once),
//!   with the whole report as JSON for exact re-rendering, and (since
//!   version 2) the commit it qualified, `source_commit`;
//! - `checks`, `perf`, `packets`, `offload`, `unit_costs`: the report's
//!   parts as rows, for SQL users and for cost-balanced sharding;
//! - `baselines`: named pointers to runs.
//!
//! Every write is one transaction: a crash leaves the previous state.
//! Opening an older database migrates it in place, one transaction per
//! version ([`MIGRATIONS`]); what it held stays readable (a version-1 run
//! has no commit).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod compare;

use rusqlite::{params, Connection, OptionalExtension};

use crate::report::perf::PerfSample;
use crate::report::{Outcome, Report};

pub const SCHEMA_VERSION: i64 = 2;
pub const DEFAULT_PATH: &str = "results/history.sqlite";
/// The baseline `compare` and the regression budget use when none is named.
pub const DEFAULT_BASELINE: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history database {}: {source}", path.display())]
    Sql {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("history database {}: schema version {found} is newer than this xdpqual understands ({SCHEMA_VERSION}); use a newer xdpqual or another --history file", path.display())]
    TooNew { path: PathBuf, found: i64 },
    #[error("history database {}: no run '{spec}' (give a run id, a unique prefix of one, `latest`, or a baseline name)", path.display())]
    NoSuchRun { path: PathBuf, spec: String },
    #[error("history database {}: '{spec}' matches several runs ({matches}); give more of the id", path.display())]
    Ambiguous { path: PathBuf, spec: String, matches: String },
    #[error("history database {}: run {id} has a report this xdpqual cannot read: {source}", path.display())]
    BadReport {
        path: PathBuf,
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("history database {}: {source}", path.display())]
    NotAFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("creating the folder for history database {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One stored run, as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRow {
    pub id: String,
    pub created_unix: u64,
    pub arch: String,
    pub kernel: Option<String>,
    pub passed: bool,
    pub failed: u64,
    /// The qualified commit; `None` for runs recorded before schema 2 or
    /// made outside a repository.
    pub commit: Option<String>,
}

pub struct History {
    path: PathBuf,
    conn: Connection,
}

/// Schema version 1, as first shipped; [`MIGRATIONS`] bring it up to
/// [`SCHEMA_VERSION`], for a new database as for an old one.
const SCHEMA_V1: &str = "
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    created_unix INTEGER NOT NULL,
    arch TEXT NOT NULL,
    kernel TEXT,
    config TEXT NOT NULL,
    passed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    report_json TEXT NOT NULL
);
CREATE TABLE checks (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    unit INTEGER NOT NULL,
    program TEXT NOT NULL,
    capture TEXT NOT NULL,
    cell TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE perf (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    program TEXT NOT NULL,
    capture TEXT NOT NULL,
    backend TEXT NOT NULL,
    rounds INTEGER NOT NULL,
    packets INTEGER NOT NULL,
    median_ns REAL NOT NULL,
    ref_median_ns REAL NOT NULL,
    ratio REAL NOT NULL,
    noise REAL NOT NULL,
    insns_per_packet REAL NOT NULL
);
CREATE TABLE packets (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    unit INTEGER NOT NULL,
    program TEXT NOT NULL,
    capture TEXT NOT NULL,
    cell TEXT NOT NULL,
    idx INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE offload (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    program TEXT NOT NULL,
    profile TEXT NOT NULL,
    compatible INTEGER NOT NULL,
    reason TEXT NOT NULL,
    est_mpps REAL
);
CREATE TABLE unit_costs (
    key TEXT PRIMARY KEY,
    seconds REAL NOT NULL,
    run_id TEXT NOT NULL
);
CREATE TABLE baselines (
    name TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    set_unix INTEGER NOT NULL
);
CREATE INDEX perf_key ON perf(program, capture, backend);
";

/// (version it makes, SQL from the version before).
const MIGRATIONS: &[(i64, &str)] = &[(2, "ALTER TABLE runs ADD COLUMN source_commit TEXT;")];

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl History {
    /// Opens (creating when absent) the database and brings its schema to
    /// the current version.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        // An existing database must be a regular file (SQLite would open a
        // FIFO or a device and fail later, or not at all).
        if path.exists() {
            crate::util::input::open_regular(path, "history database")
                .map_err(|source| HistoryError::NotAFile { path: path.to_path_buf(), source })?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| HistoryError::Dir { path: path.to_path_buf(), source })?;
        }
        let sql = |source| HistoryError::Sql { path: path.to_path_buf(), source };
        let mut conn = Connection::open(path).map_err(sql)?;
        // Shards and a dashboard may read while a merge writes.
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", true).map_err(sql)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql)?;
        if version > SCHEMA_VERSION {
            return Err(HistoryError::TooNew { path: path.to_path_buf(), found: version });
        }
        if version == 0 {
            let tx = conn.transaction().map_err(sql)?;
            tx.execute_batch(SCHEMA_V1).map_err(sql)?;
            tx.pragma_update(None, "user_version", 1).map_err(sql)?;
            tx.commit().map_err(sql)?;
        }
        for (to, migration) in MIGRATIONS.iter().filter(|(to, _)| *to > version.max(1)) {
            let tx = conn.transaction().map_err(sql)?;
            tx.execute_batch(migration).map_err(sql)?;
            tx.pragma_update(None, "user_version", to).map_err(sql)?;
            tx.commit().map_err(sql)?;
        }
        Ok(History { path: path.to_path_buf(), conn })
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> HistoryError + '_ {
        |source| HistoryError::Sql { path: self.path.clone(), source }
    }

    /// Stores a finished run and its unit costs in one transaction.
    pub fn record(&mut self, report: &Report) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let sql = |source| HistoryError::Sql { path: path.clone(), source };
        let json = serde_json::to_string(report).expect("a report always serialises");
        let failed = report.failures().count() as i64;
        let tx = self.conn.transaction().map_err(sql)?;
        let r = &report.run;
        tx.execute(
            "INSERT INTO runs (id, created_unix, arch, kernel, config, passed, failed, report_json, source_commit) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![r.id, r.created_unix as i64, r.arch, r.kernel, r.config, report.passed(), failed, json, r.commit],
        )
        .map_err(sql)?;
        {
            let mut st = tx
                .prepare("INSERT INTO checks VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")
                .map_err(sql)?;
            for (seq, c) in report.checks.iter().enumerate() {
                let (status, text) = match &c.outcome {
                    Outcome::Pass { detail } => ("pass", detail),
                    Outcome::Fail { reason } => ("fail", reason),
                    Outcome::Skipped { reason } => ("skipped", reason),
                };
                st.execute(params![
                    r.id,
                    seq as i64,
                    c.unit as i64,
                    c.program,
                    c.capture,
                    c.cell,
                    c.check,
                    status,
                    text
                ])
                .map_err(sql)?;
            }
            let mut st = tx
                .prepare("INSERT INTO perf VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")
                .map_err(sql)?;
            for p in &report.perf {
                st.execute(params![
                    r.id,
                    p.program,
                    p.capture,
                    p.backend,
                    p.rounds,
                    p.packets as i64,
                    p.median_ns,
                    p.ref_median_ns,
                    p.ratio,
                    p.noise,
                    p.insns_per_packet
                ])
                .map_err(sql)?;
            }
            let mut st = tx
                .prepare("INSERT INTO packets VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                .map_err(sql)?;
            for p in &report.packets {
                st.execute(params![
                    r.id,
                    p.unit as i64,
                    p.program,
                    p.capture,
                    p.cell,
                    p.index as i64,
                    p.detail
                ])
                .map_err(sql)?;
            }
            let mut st =
                tx.prepare("INSERT INTO offload VALUES (?1, ?2, ?3, ?4, ?5, ?6)").map_err(sql)?;
            for o in &report.offload {
                st.execute(params![r.id, o.program, o.profile, o.compatible, o.reason, o.est_mpps])
                    .map_err(sql)?;
            }
            let mut st =
                tx.prepare("INSERT OR REPLACE INTO unit_costs VALUES (?1, ?2, ?3)").map_err(sql)?;
            for u in &report.units {
                st.execute(params![u.key, u.seconds, r.id]).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// Whether the history holds run `id`.
    pub fn has_run(&self, id: &str) -> Result<bool, HistoryError> {
        self.conn
            .query_row("SELECT 1 FROM runs WHERE id = ?1", params![id], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(self.sql())
    }

    /// All runs, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRow>, HistoryError> {
        let mut st = self.conn.prepare("SELECT id, created_unix, arch, kernel, passed, failed, source_commit FROM runs ORDER BY created_unix, rowid").map_err(self.sql())?;
        let rows = st
            .query_map([], |r| {
                Ok(RunRow {
                    id: r.get(0)?,
                    created_unix: r.get::<_, i64>(1)? as u64,
                    arch: r.get(2)?,
                    kernel: r.get(3)?,
                    passed: r.get(4)?,
                    failed: r.get::<_, i64>(5)? as u64,
                    commit: r.get(6)?,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }

    /// A run id from `latest`, a baseline name, an id or a unique id prefix.
    pub fn resolve(&self, spec: &str) -> Result<String, HistoryError> {
        let runs = self.runs()?;
        if spec == "latest" {
            return runs.last().map(|r| r.id.clone()).ok_or_else(|| HistoryError::NoSuchRun {
                path: self.path.clone(),
                spec: spec.into(),
            });
        }
        if runs.iter().any(|r| r.id == spec) {
            return Ok(spec.into());
        }
        if let Some(id) = self.baseline(spec)? {
            return Ok(id);
        }
        let matches: Vec<&RunRow> = runs.iter().filter(|r| r.id.starts_with(spec)).collect();
        match matches.as_slice() {
            [one] => Ok(one.id.clone()),
            [] => Err(HistoryError::NoSuchRun { path: self.path.clone(), spec: spec.into() }),
            many => Err(HistoryError::Ambiguous {
                path: self.path.clone(),
                spec: spec.into(),
                matches: many.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    pub fn report(&self, id: &str) -> Result<Report, HistoryError> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT report_json FROM runs WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(self.sql())?;
        let json = json
            .ok_or_else(|| HistoryError::NoSuchRun { path: self.path.clone(), spec: id.into() })?;
        serde_json::from_str(&json).map_err(|source| HistoryError::BadReport {
            path: self.path.clone(),
            id: id.into(),
            source,
        })
    }

    pub fn set_baseline(&mut self, name: &str, run_spec: &str) -> Result<String, HistoryError> {
        let id = self.resolve(run_spec)?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO baselines (name, run_id, set_unix) VALUES (?1, ?2, ?3)",
                params![name, id, now_unix() as i64],
            )
            .map_err(self.sql())?;
        Ok(id)
    }

    pub fn baseline(&self, name: &str) -> Result<Option<String>, HistoryError> {
        self.conn
            .query_row("SELECT run_id FROM baselines WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .map_err(self.sql())
    }

    /// Every baseline: name -> run id.
    pub fn baselines(&self) -> Result<BTreeMap<String, String>, HistoryError> {
        let mut st = self
            .conn
            .prepare("SELECT name, run_id FROM baselines ORDER BY name")
            .map_err(self.sql())?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }

    /// The latest recorded wall time of each unit key.
    pub fn unit_costs(&self) -> Result<BTreeMap<String, f64>, HistoryError> {
        let mut st =
            self.conn.prepare("SELECT key, seconds FROM unit_costs").map_err(self.sql())?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }

    /// A run's perf samples.
    pub fn perf(&self, id: &str) -> Result<Vec<PerfSample>, HistoryError> {
        let mut st = self
            .conn
            .prepare("SELECT program, capture, backend, rounds, packets, median_ns, ref_median_ns, ratio, noise, insns_per_packet FROM perf WHERE run_id = ?1 ORDER BY rowid")
            .map_err(self.sql())?;
        let rows = st
            .query_map([id], |r| {
                Ok(PerfSample {
                    unit: 0,
                    program: r.get(0)?,
                    capture: r.get(1)?,
                    backend: r.get(2)?,
                    rounds: r.get(3)?,
                    packets: r.get::<_, i64>(4)? as u64,
                    median_ns: r.get(5)?,
                    ref_median_ns: r.get(6)?,
                    ratio: r.get(7)?,
                    noise: r.get(8)?,
                    insns_per_packet: r.get(9)?,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Check, RunInfo, UnitTiming};

    fn report(id: &str, t: u64, fail: bool) -> Report {
        let mut r = Report::new();
        r.run = RunInfo {
            id: id.into(),
            created_unix: t,
            arch: "x86_64".into(),
            kernel: None,
            config: "x.toml".into(),
            shard: None,
            commit: None,
        };
        let outcome = if fail {
            Outcome::Fail { reason: "bad".into() }
        } else {
            Outcome::Pass { detail: "ok".into() }
        };
        r.checks.push(Check::new("p.o", "c.pcap", "engine replay", outcome).in_unit(0, "vm"));
        r.perf.push(PerfSample {
            unit: 0,
            program: "p.o".into(),
            capture: "c.pcap".into(),
            backend: "vm".into(),
            rounds: 3,
            packets: 10,
            median_ns: 100.0,
            ref_median_ns: 50.0,
            ratio: 2.0,
            noise: 0.01,
            insns_per_packet: 12.0,
        });
        r.units.push(UnitTiming { unit: 0, key: "p.o|c.pcap|vm".into(), seconds: t as f64 });
        r
    }

    #[test]
    fn runs_baselines_and_costs_round_trip() {
        let dir = std::env::temp_dir().join(format!("xdpqual-hist-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub/h.sqlite");
        let mut h = History::open(&path).unwrap();
        h.record(&report("100-a", 100, false)).unwrap();
        h.record(&report("200-b", 200, true)).unwrap();
        // A duplicate id is refused and leaves nothing half-written.
        assert!(h.record(&report("200-b", 300, false)).is_err());
        drop(h);
        let mut h = History::open(&path).unwrap();
        let runs = h.runs().unwrap();
        assert_eq!(
            runs.iter().map(|r| (r.id.as_str(), r.passed)).collect::<Vec<_>>(),
            vec![("100-a", true), ("200-b", false)]
        );
        assert_eq!(h.resolve("latest").unwrap(), "200-b");
        assert_eq!(h.resolve("1").unwrap(), "100-a");
        assert!(matches!(h.resolve("9"), Err(HistoryError::NoSuchRun { .. })));
        assert_eq!(h.set_baseline("default", "100").unwrap(), "100-a");
        assert_eq!(h.resolve("default").unwrap(), "100-a");
        assert_eq!(h.unit_costs().unwrap()["p.o|c.pcap|vm"], 200.0);
        assert_eq!(h.perf("100-a").unwrap()[0].ratio, 2.0);
        assert_eq!(h.report("200-b").unwrap().checks, report("200-b", 200, true).checks);
        let checks: i64 =
            h.conn.query_row("SELECT COUNT(*) FROM checks", [], |r| r.get(0)).unwrap();
        assert_eq!(checks, 2);
        h.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(h);
        assert!(matches!(History::open(&path), Err(HistoryError::TooNew { found: 99, .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_version_1_database_is_migrated_and_stays_readable() {
        let dir = std::env::temp_dir().join(format!("xdpqual-hist-v1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.sqlite");
        // A database as version 1 wrote it: its schema, and a run whose
        // report JSON has no commit (RunInfo had none then).
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            let mut old = serde_json::to_value(report("100-a", 100, false)).unwrap();
            old["run"].as_object_mut().unwrap().remove("commit");
            conn.execute(
                "INSERT INTO runs (id, created_unix, arch, kernel, config, passed, failed, report_json) VALUES ('100-a', 100, 'x86_64', NULL, 'x.toml', 1, 0, ?1)",
                [old.to_string()],
            )
            .unwrap();
        }
        let mut h = History::open(&path).unwrap();
        let v: i64 = h.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let mut new = report("200-b", 200, false);
        new.run.commit = Some("0123456789abcdef".into());
        h.record(&new).unwrap();
        drop(h);
        // Reopening a current database changes nothing.
        let h = History::open(&path).unwrap();
        let runs = h.runs().unwrap();
        assert_eq!(
            runs.iter().map(|r| (r.id.as_str(), r.commit.as_deref())).collect::<Vec<_>>(),
            vec![("100-a", None), ("200-b", Some("0123456789abcdef"))]
        );
        assert_eq!(h.report("100-a").unwrap().run.commit, None);
        assert_eq!(h.report("200-b").unwrap().run.commit.as_deref(), Some("0123456789abcdef"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
