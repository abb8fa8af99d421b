//! The socket side of kernel timestamps and busy polling, through `nix`'s safe wrappers:
//! `SO_TIMESTAMPING` on and off, `recvmsg` with its `SCM_TIMESTAMPING` control message,
//! reading TX stamps from the error queue (`MSG_ERRQUEUE`), and `SO_BUSY_POLL`.
//!
//! `nix` names no `SO_BUSY_POLL` option, so [`BusyPoll`] is declared with `nix`'s exported
//! `sockopt_impl!` macro, the way `nix` declares its own options: the `setsockopt` call it
//! expands to is `nix`'s code (an `int` passed by pointer and length), not written here.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;
use nix::libc;
use nix::sys::socket::{
    self, ControlMessageOwned, MsgFlags, SockaddrStorage, TimestampingFlag, sockopt,
};
use nix::sys::time::TimeSpec;
use nix::{getsockopt_impl, setsockopt_impl, sockopt_impl};

use super::stamps::KStamp;

sockopt_impl!(
    /// `SO_BUSY_POLL`: µs a blocking (or, per call, a non-blocking) receive may busy-poll the
    /// device queue of the socket's NAPI instance. Raising it above `net.core.busy_read` needs
    /// `CAP_NET_ADMIN`.
    BusyPoll,
    Both,
    libc::SOL_SOCKET,
    libc::SO_BUSY_POLL,
    libc::c_int
);

/// `SCM_TSTAMP_SND` (linux/errqueue.h): the stamp taken when the packet left (driver or NIC).
const SCM_TSTAMP_SND: u32 = 0;

/// The `SO_TIMESTAMPING` flags of kernel mode: generate software and hardware stamps on
/// transmit and receive, report both (`OPT_TX_SWHW`: both TX stamps even when the NIC stamps),
/// number send calls (`OPT_ID`), and loop back no payload with TX stamps (`OPT_TSONLY`).
pub fn kernel_flags() -> TimestampingFlag {
    TimestampingFlag::SOF_TIMESTAMPING_TX_SOFTWARE
        | TimestampingFlag::SOF_TIMESTAMPING_RX_SOFTWARE
        | TimestampingFlag::SOF_TIMESTAMPING_SOFTWARE
        | TimestampingFlag::SOF_TIMESTAMPING_TX_HARDWARE
        | TimestampingFlag::SOF_TIMESTAMPING_RX_HARDWARE
        | TimestampingFlag::SOF_TIMESTAMPING_RAW_HARDWARE
        | TimestampingFlag::SOF_TIMESTAMPING_OPT_ID
        | TimestampingFlag::SOF_TIMESTAMPING_OPT_TSONLY
        | TimestampingFlag::from_bits_retain(libc::SOF_TIMESTAMPING_OPT_TX_SWHW)
}

/// Turn kernel timestamps on. On a TCP socket this must happen once connected and before
/// anything is written: ids then count bytes from the first byte written.
pub fn enable_timestamps<F: AsFd>(fd: &F) -> Result<(), Errno> {
    socket::setsockopt(fd, sockopt::Timestamping, &kernel_flags())
}

/// Turn kernel timestamps off.
pub fn disable_timestamps<F: AsFd>(fd: &F) -> Result<(), Errno> {
    socket::setsockopt(fd, sockopt::Timestamping, &TimestampingFlag::empty())
}

/// A socket that asks for software RX stamps and is otherwise unused. The kernel stamps
/// arriving packets only while some socket wants it (a global switch, `netstamp_needed_key`,
/// counted per socket) and flips that switch from a work queue, so a socket that enables RX
/// stamps can see unstamped packets for a while, which on a busy machine is long. An agent in
/// kernel mode holds one of these for its whole session, from `configure` on, so the switch
/// is on before the load starts and stays on while connections come and go. It also waits (at
/// most about 200 ms) until a datagram it sends itself comes back stamped; the second value
/// says whether one did.
pub fn rx_stamp_keeper() -> io::Result<(std::net::UdpSocket, bool)> {
    let s = std::net::UdpSocket::bind("127.0.0.1:0")?;
    socket::setsockopt(
        &s,
        sockopt::Timestamping,
        &(TimestampingFlag::SOF_TIMESTAMPING_RX_SOFTWARE
            | TimestampingFlag::SOF_TIMESTAMPING_SOFTWARE),
    )
    .map_err(io_err)?;
    let me = s.local_addr()?;
    let (mut buf, mut cmsg) = ([0u8; 8], cmsg_buffer());
    for _ in 0..200 {
        s.send_to(b"probe", me)?;
        // Loopback queues the datagram before send_to returns.
        if let Some((_, st)) = recv_stamped(&s, &mut buf, &mut cmsg)?
            && !st.is_empty()
        {
            return Ok((s, true));
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok((s, false))
}

/// Set `SO_BUSY_POLL` to `us` and read it back.
pub fn set_busy_poll<F: AsFd>(fd: &F, us: u32) -> Result<u32, Errno> {
    let v = libc::c_int::try_from(us).map_err(|_| Errno::EINVAL)?;
    socket::setsockopt(fd, BusyPoll, &v)?;
    let got = socket::getsockopt(fd, BusyPoll)?;
    u32::try_from(got).map_err(|_| Errno::EINVAL)
}

/// The system default of `SO_BUSY_POLL` (`net.core.busy_read`, µs), if readable.
pub fn busy_read_sysctl() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/net/core/busy_read")
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn ns(t: &TimeSpec) -> Option<i64> {
    let v = i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec());
    (v != 0).then(|| i64::try_from(v).ok()).flatten()
}

fn stamp_of(t: &socket::Timestamps) -> KStamp {
    KStamp {
        sw: ns(&t.system),
        hw: ns(&t.hw_raw),
    }
}

/// Room for `SCM_TIMESTAMPING` (three timespecs) and an `IP(V6)_RECVERR` with its address.
pub fn cmsg_buffer() -> Vec<u8> {
    nix::cmsg_space!(
        [libc::timespec; 3],
        libc::sock_extended_err,
        libc::sockaddr_in6,
        [libc::timespec; 3]
    )
}

fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// A non-blocking `recvmsg` into `buf`: bytes received and the kernel RX stamp it carried
/// (empty if none, or if the control data was truncated). `Ok(None)` when nothing is there.
pub fn recv_stamped<F: AsRawFd>(
    fd: &F,
    buf: &mut [u8],
    cmsg: &mut [u8],
) -> io::Result<Option<(usize, KStamp)>> {
    let mut iov = [IoSliceMut::new(buf)];
    let m = match socket::recvmsg::<SockaddrStorage>(
        fd.as_raw_fd(),
        &mut iov,
        Some(cmsg),
        MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(m) => m,
        Err(Errno::EAGAIN) => return Ok(None),
        Err(Errno::EINTR) => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let mut stamp = KStamp::default();
    if let Ok(cmsgs) = m.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmTimestampsns(t) = c {
                stamp = stamp_of(&t);
            }
        }
    }
    Ok(Some((m.bytes, stamp)))
}

/// One message from the error queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrQueue {
    /// Nothing queued.
    Empty,
    /// A transmit stamp: its `OPT_ID` id and times.
    Tx(u32, KStamp),
    /// Something else (another stamp type, a real error): skipped.
    Other,
}

/// Read one message from the error queue without blocking.
pub fn read_errqueue<F: AsRawFd>(fd: &F, cmsg: &mut [u8]) -> io::Result<ErrQueue> {
    let mut buf = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let m = match socket::recvmsg::<SockaddrStorage>(
        fd.as_raw_fd(),
        &mut iov,
        Some(cmsg),
        MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(m) => m,
        Err(Errno::EAGAIN) => return Ok(ErrQueue::Empty),
        Err(Errno::EINTR) => return Ok(ErrQueue::Other),
        Err(e) => return Err(io_err(e)),
    };
    let Ok(cmsgs) = m.cmsgs() else {
        return Ok(ErrQueue::Other);
    };
    let (mut stamp, mut id) = (None, None);
    for c in cmsgs {
        match c {
            ControlMessageOwned::ScmTimestampsns(t) => stamp = Some(stamp_of(&t)),
            ControlMessageOwned::Ipv4RecvErr(e, _) | ControlMessageOwned::Ipv6RecvErr(e, _)
                if e.ee_errno == libc::ENOMSG as u32
                    && e.ee_origin == libc::SO_EE_ORIGIN_TIMESTAMPING
                    && e.ee_info == SCM_TSTAMP_SND =>
            {
                id = Some(e.ee_data);
            }
            _ => {}
        }
    }
    Ok(match (id, stamp) {
        (Some(id), Some(s)) if !s.is_empty() => ErrQueue::Tx(id, s),
        _ => ErrQueue::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn udp_stamps_on_loopback() {
        let srv = UdpSocket::bind("127.0.0.1:0").unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.connect(srv.local_addr().unwrap()).unwrap();
        if let Err(e) = enable_timestamps(&c) {
            eprintln!("SKIP: SO_TIMESTAMPING refused here: {e}");
            return;
        }
        let mut cm = cmsg_buffer();
        for i in 0..3u8 {
            c.send(&[i; 4]).unwrap();
        }
        let mut ids = Vec::new();
        for _ in 0..100 {
            match read_errqueue(&c, &mut cm).unwrap() {
                ErrQueue::Tx(id, s) => {
                    assert!(s.sw.is_some());
                    ids.push(id);
                }
                ErrQueue::Other => {}
                ErrQueue::Empty => break,
            }
        }
        // Loopback stamps synchronously in its transmit path: all three are there, in order.
        assert_eq!(ids, vec![0, 1, 2]);
        // The kernel switches RX stamping on from a work queue: until then replies come
        // unstamped. Echo until one is stamped (bounded by count).
        let (_keeper, ready) = rx_stamp_keeper().unwrap();
        eprintln!("RX stamping switched on in time: {ready}");
        let mut b = [0u8; 16];
        let mut stamped = None;
        for _ in 0..2000 {
            let (_, from) = srv.recv_from(&mut b).unwrap();
            srv.send_to(b"x", from).unwrap();
            // Loopback delivers before send_to returns.
            let got = (0..100_000)
                .find_map(|_| recv_stamped(&c, &mut b, &mut cm).unwrap())
                .expect("the reply never arrived");
            assert_eq!(got.0, 1);
            if !got.1.is_empty() {
                stamped = Some(got.1);
                break;
            }
            c.send(b"again").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let s = stamped.expect("no reply was ever stamped");
        assert!(s.sw.is_some() && s.hw.is_none(), "{s:?}");
        disable_timestamps(&c).unwrap();
    }
}
