//! Attaching a program to an interface for the length of a run, and never
//! leaving it there: [`Attachment`] detaches in `Drop` (error paths and
//! panics included) and puts back a program it replaced.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::netlink::{self, Attached, XDP_FLAGS_UPDATE_IF_NOEXIST};
use super::sys;
use super::{Endpoint, LiveError, XdpMode};

/// An interface looked up in its namespace, with a netlink socket that
/// belongs to that namespace.
#[derive(Debug)]
pub struct Interface {
    pub endpoint: Endpoint,
    pub ifindex: u32,
    pub mtu: u32,
    /// `ethtool -i`: driver, version, firmware, bus.
    pub driver: [String; 4],
    pub xdp: Vec<Attached>,
    /// For a veth, its peer's ifindex, when the peer is in the same namespace.
    pub peer_ifindex: Option<u32>,
    nl: OwnedFd,
}

impl Interface {
    pub fn resolve(ep: &Endpoint) -> Result<Interface, LiveError> {
        let r = sys::in_netns(ep.netns.as_deref(), || -> Result<_, LiveError> {
            let ifindex = sys::if_index(&ep.iface)
                .map_err(|errno| LiveError::NoSuchInterface { iface: ep.describe(), errno })?;
            let driver = sys::driver_info(&ep.iface).unwrap_or_else(|e| {
                [
                    format!("unknown (ethtool ioctl: {e})"),
                    String::new(),
                    String::new(),
                    String::new(),
                ]
            });
            let nl = sys::netlink_route().map_err(|errno| LiveError::Io {
                step: "opening a netlink socket".into(),
                iface: ep.describe(),
                errno,
            })?;
            Ok((ifindex, driver, nl))
        });
        let (ifindex, driver, nl) = match r {
            Ok(inner) => inner?,
            Err(errno) => {
                return Err(LiveError::Netns {
                    path: ep.netns.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                    errno,
                })
            }
        };
        let state = netlink::query(&nl, ifindex)
            .map_err(|err| LiveError::Netlink { iface: ep.describe(), err })?;
        let peer_ifindex = state.link.filter(|_| !state.link_in_other_netns);
        Ok(Interface {
            endpoint: ep.clone(),
            ifindex,
            mtu: state.mtu,
            driver,
            xdp: state.xdp,
            peer_ifindex,
            nl,
        })
    }

    /// A netlink socket in the interface's namespace.
    pub fn netlink(&self) -> &OwnedFd {
        &self.nl
    }

    pub fn driver(&self) -> &str {
        &self.driver[0]
    }

    pub fn describe(&self) -> String {
        self.endpoint.describe()
    }
}

/// A program we attached; detached (and any replaced program restored)
/// when dropped or [`finish`](Attachment::finish)ed.
pub struct Attachment<'a> {
    iface: &'a Interface,
    mode: XdpMode,
    /// The programs that were there before, held open so they survive.
    replaced: Vec<(XdpMode, OwnedFd)>,
    done: bool,
    /// The record a later run uses to detach it if this process is killed;
    /// removed after the detach (fields drop after `Drop::drop`).
    _state: Option<super::leftovers::StateFile>,
}

impl<'a> Attachment<'a> {
    /// Attaches `prog_fd` in `mode`. With programs already attached it
    /// refuses unless `replace`, in which case they are detached first and
    /// kept open to be put back.
    pub fn attach(
        iface: &'a Interface,
        prog_fd: RawFd,
        mode: XdpMode,
        replace: bool,
        kernel: &str,
    ) -> Result<Attachment<'a>, LiveError> {
        let mut a = Attachment { iface, mode, replaced: Vec::new(), done: false, _state: None };
        if let Some(first) = iface.xdp.first() {
            if !replace {
                let name = sys::prog_fd_by_id(first.prog_id)
                    .ok()
                    .and_then(|fd| sys::prog_stats(fd.as_raw_fd()).ok())
                    .map(|s| s.name)
                    .unwrap_or_else(|| "?".into());
                return Err(LiveError::Busy {
                    iface: iface.describe(),
                    prog_id: first.prog_id,
                    name,
                    mode: first.mode,
                });
            }
            for old in &iface.xdp {
                let fd = sys::prog_fd_by_id(old.prog_id).map_err(|errno| LiveError::Io {
                    step: format!("taking hold of the attached program id {}", old.prog_id),
                    iface: iface.describe(),
                    errno,
                })?;
                netlink::set_xdp(&iface.nl, iface.ifindex, -1, old.mode, 0)
                    .map_err(|err| LiveError::Netlink { iface: iface.describe(), err })?;
                a.replaced.push((old.mode, fd));
            }
        }
        // Written down before attaching, so that a SIGKILL right after the
        // attach still leaves the record a later run needs.
        if let Ok(stats) = sys::prog_stats(prog_fd) {
            a._state = Some(super::leftovers::StateFile::write(&super::leftovers::Record {
                pid: std::process::id(),
                iface: iface.endpoint.iface.clone(),
                netns: iface.endpoint.netns.clone(),
                mode,
                prog_id: stats.id,
            }));
        }
        netlink::set_xdp(&iface.nl, iface.ifindex, prog_fd, mode, XDP_FLAGS_UPDATE_IF_NOEXIST)
            .map_err(|err| LiveError::AttachRefused {
                iface: iface.describe(),
                mode,
                driver: iface.driver().to_string(),
                kernel: kernel.to_string(),
                err,
            })?;
        Ok(a)
    }

    /// Detaches and restores, reporting what went wrong.
    pub fn finish(mut self) -> Result<(), LiveError> {
        self.cleanup()
    }

    fn cleanup(&mut self) -> Result<(), LiveError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let iface = self.iface;
        let detach = netlink::set_xdp(&iface.nl, iface.ifindex, -1, self.mode, 0);
        let mut restore = Ok(());
        for (mode, fd) in self.replaced.drain(..) {
            if let Err(err) = netlink::set_xdp(
                &iface.nl,
                iface.ifindex,
                fd.as_raw_fd(),
                mode,
                XDP_FLAGS_UPDATE_IF_NOEXIST,
            ) {
                restore = Err(LiveError::Netlink {
                    iface: format!(
                        "{} (putting back the replaced program in {mode} mode)",
                        iface.describe()
                    ),
                    err,
                });
            }
        }
        detach.map_err(|err| LiveError::Netlink {
            iface: format!("{} (detaching)", iface.describe()),
            err,
        })?;
        restore
    }
}

impl Drop for Attachment<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            eprintln!(
                "xdpqual: warning: cleanup of {} failed: {e}; check with `ip link show`",
                self.iface.describe()
            );
        }
    }
}

/// Detaches the program a dead run recorded, if that very program (by id) is
/// still attached; says what it found.
pub fn detach_recorded(rec: &super::leftovers::Record) -> String {
    let ep = Endpoint { iface: rec.iface.clone(), netns: rec.netns.clone() };
    let what = format!(
        "XDP program id {} ({} mode) on {}, left by process {}, which is gone",
        rec.prog_id,
        rec.mode,
        ep.describe(),
        rec.pid
    );
    if rec.netns.as_ref().is_some_and(|p| !p.exists()) {
        return format!("{what}: its namespace no longer exists");
    }
    let ifc = match Interface::resolve(&ep) {
        Ok(i) => i,
        Err(e) => return format!("{what}: interface gone ({e})"),
    };
    if !ifc.xdp.iter().any(|a| a.mode == rec.mode && a.prog_id == rec.prog_id) {
        return format!("{what}: no longer attached");
    }
    match netlink::set_xdp(ifc.netlink(), ifc.ifindex, -1, rec.mode, 0) {
        Ok(()) => format!("detached {what}"),
        Err(e) => format!("could not detach {what}: {e}"),
    }
}
