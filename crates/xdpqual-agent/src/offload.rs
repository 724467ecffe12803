//! The offload cell: a netdevsim device, the program and its maps bound
//! to it, and an attach in HW mode, each step's refusal kept in the
//! kernel's words. The load is the kernel layer's
//! (`xdpqual_kernel::host::offload`), the same code the live backend's
//! `hw` mode runs against a real NIC; the attach is the same rtnetlink
//! request (`xdpqual_kernel::rtnl`).

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use xdpqual_kernel::host::offload::{load_bound, BindError};
use xdpqual_kernel::{net, rtnl};
use xdpqual_object::{Object, Program};
use xdpqual_protocol::{GuestOffload, OffloadStep};

/// The netdevsim bus device id the agent creates.
const NSIM_ID: u32 = 1;

/// Creates netdevsim device `NSIM_ID` with one port and returns its
/// netdev's name (drivers/net/netdevsim/bus.c `new_device_store` takes
/// "ID [PORT_COUNT [NUM_QUEUES]]"; the port's netdev appears under the
/// device's sysfs `net/` directory).
fn create_netdevsim() -> Result<String, String> {
    let bus = "/sys/bus/netdevsim/new_device";
    if !std::path::Path::new("/sys/bus/netdevsim").exists() {
        return Err("this kernel has no netdevsim (CONFIG_NETDEVSIM)".into());
    }
    std::fs::write(bus, format!("{NSIM_ID} 1"))
        .map_err(|e| format!("creating a netdevsim device ({bus}): {e}"))?;
    let dir = format!("/sys/bus/netdevsim/devices/netdevsim{NSIM_ID}/net");
    // The port is registered asynchronously from the write's point of view
    // on some kernels; wait for it briefly.
    let start = Instant::now();
    loop {
        if let Some(name) = std::fs::read_dir(&dir)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
        {
            return Ok(name);
        }
        if start.elapsed() > Duration::from_secs(5) {
            return Err(format!("netdevsim{NSIM_ID} has no network device in {dir} after 5s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The verifier log's first line that says why, as the host backend
/// picks it, else its last non-empty line.
fn why(log: &str) -> Option<String> {
    let (first, _) = xdpqual_kernel::host::prog::parse_verifier_log(log, usize::MAX);
    first.or_else(|| log.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string))
}

pub(crate) fn run(obj: &Object, main: &Program) -> Result<GuestOffload, String> {
    let name = create_netdevsim()?;
    let ifindex = net::if_index(&name).map_err(|e| format!("ifindex of {name}: {e}"))?;
    let device = format!("{name} (ifindex {ifindex}, netdevsim{NSIM_ID})");
    let bound = match load_bound(obj, main, ifindex) {
        Ok(b) => b,
        Err(e) => {
            let (errno, message, log) = match &e {
                BindError::Map { errno, .. } => (errno.to_string(), None, String::new()),
                BindError::Program { errno, log } => (errno.to_string(), why(log), log.clone()),
                BindError::BadMapReference { .. } => ("-".into(), None, String::new()),
            };
            return Ok(GuestOffload {
                device,
                load: OffloadStep::Refused { step: e.to_string(), errno, message, log },
                attach: None,
                accepted_log: String::new(),
            });
        }
    };
    let nl = net::netlink_route().map_err(|e| format!("opening a NETLINK_ROUTE socket: {e}"))?;
    let attach =
        match rtnl::set_xdp_flags(&nl, ifindex, bound.prog.as_raw_fd(), rtnl::XDP_FLAGS_HW_MODE) {
            Ok(()) => OffloadStep::Accepted,
            Err(e) => OffloadStep::Refused {
                step: "attaching with XDP_FLAGS_HW_MODE (RTM_SETLINK IFLA_XDP)".into(),
                errno: e.errno.to_string(),
                message: e.extack.clone(),
                log: String::new(),
            },
        };
    Ok(GuestOffload {
        device,
        load: OffloadStep::Accepted,
        attach: Some(attach),
        accepted_log: bound.log.clone(),
    })
}
