//! Who a request comes from when the broker sits behind load balancers or proxies.
//!
//! Every proxy appends the address it received the request from to `X-Forwarded-For`: some to the
//! last header line, HAProxy as a new line. Everything left of what the operator's proxies wrote
//! is the client's own text and may be made up (a client can send its own first line), so the
//! client is the right-most address the trusted proxies did not write:
//!
//! - **a count** (`2`): there are that many proxies, each appending one entry; the client is the
//!   entry that many places from the right (the one the outermost proxy saw);
//! - **a list** (`10.0.0.0/8,192.168.1.5/32`): the proxies' own addresses; walking from the TCP
//!   peer leftwards past every proxy, the first other address is the client. A peer that is not one
//!   of them connected directly, and its `X-Forwarded-For` is ignored.
//!
//! All lines are read, joined in the order they arrived. An entry may carry a port
//! (`1.2.3.4:5678`, `[2001:db8::1]:443`); an entry that is not an address where the client should
//! be means the header cannot be trusted, and the TCP peer counts instead.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The most proxies a count may name: more is a typo, not a deployment.
pub const MAX_HOPS: usize = 16;

/// Which proxies in front of the broker are the operator's (`USPSLINK_BROKER_TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrustedProxies {
    /// No proxy: the TCP peer is the client and `X-Forwarded-For` is ignored.
    #[default]
    None,
    /// This many proxies in front, each appending one entry.
    Hops(usize),
    /// The proxies' addresses.
    Cidrs(Vec<Cidr>),
}

impl TrustedProxies {
    /// A count of proxies (`2`) or their addresses (`10.0.0.0/8,192.168.1.5/32,2001:db8::/32`; a
    /// bare address is one host). `0` is no proxy.
    pub fn parse(text: &str) -> Result<TrustedProxies, String> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return match text.parse::<usize>() {
                Ok(0) => Ok(TrustedProxies::None),
                Ok(n) if n <= MAX_HOPS => Ok(TrustedProxies::Hops(n)),
                _ => Err(format!("a count of proxies is at most {MAX_HOPS}")),
            };
        }
        let mut proxies = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let cidr = Cidr::parse(part);
            proxies.push(cidr.ok_or_else(|| format!("{part:?} is not an address or a network like 10.0.0.0/8"))?);
        }
        if proxies.is_empty() {
            return Err("neither a count of proxies nor a list of their addresses".into());
        }
        Ok(TrustedProxies::Cidrs(proxies))
    }
}

/// A network: an address and how many of its leading bits are fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `2001:db8::/32`, or an address alone (all its bits).
    pub fn parse(text: &str) -> Option<Cidr> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let address: IpAddr = address.parse().ok()?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse::<u8>().ok()?,
            Some(_) => return None,
            None => bits,
        };
        if prefix > bits {
            return None;
        }
        Some(Cidr { network: mask(address, prefix), prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => mask(ip, self.prefix) == self.network,
            _ => false,
        }
    }
}

/// `ip` with all but its first `prefix` bits cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let keep = u32::from(prefix.min(32));
            let m = if keep == 0 { 0 } else { u32::MAX << (32 - keep) };
            IpAddr::V4((u32::from(v4) & m).into())
        }
        IpAddr::V6(v6) => {
            let keep = u32::from(prefix.min(128));
            let m = if keep == 0 { 0 } else { u128::MAX << (128 - keep) };
            IpAddr::V6((u128::from(v6) & m).into())
        }
    }
}

/// One `X-Forwarded-For` entry: an address, with or without a port. IPv4-mapped IPv6 addresses
/// (`::ffff:192.0.2.1`, what a dual-stack socket reports) are read as the IPv4 address.
pub fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse::<Ipv6Addr>().ok().map(IpAddr::V6))?;
    Some(ip.to_canonical())
}

/// The client of a request that came from `peer` with these `X-Forwarded-For` lines (in the order
/// they arrived), given which proxies are the operator's. Never fails: anything it cannot trust
/// falls back to the peer.
pub fn client_address<'a>(lines: impl IntoIterator<Item = &'a str>, peer: IpAddr, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    let entries = || lines.into_iter().flat_map(|line| line.split(','));
    match trusted {
        TrustedProxies::None => peer,
        TrustedProxies::Hops(hops) => {
            let entries: Vec<&str> = entries().collect();
            // Fewer entries than proxies: the header is not what the proxies wrote.
            match entries.len().checked_sub(*hops) {
                Some(i) if *hops > 0 => parse_entry(entries[i]).unwrap_or(peer),
                _ => peer,
            }
        }
        TrustedProxies::Cidrs(proxies) => {
            let is_proxy = |ip: IpAddr| proxies.iter().any(|c| c.contains(ip));
            if !is_proxy(peer) {
                return peer;
            }
            let entries: Vec<&str> = entries().collect();
            let mut nearest = peer;
            for entry in entries.iter().rev() {
                match parse_entry(entry) {
                    Some(ip) if is_proxy(ip) => nearest = ip,
                    Some(ip) => return ip,
                    None => return peer,
                }
            }
            // Every address is a proxy's (a health check from inside): the furthest one.
            nearest
        }
    }
}

/// What the per-client rate limit counts against: an IPv4 address, or an IPv6 client's /64 (one
/// subscriber's network: a host is given a /64 and may use any address in it, so counting single
/// IPv6 addresses would give one client 2^64 budgets).
pub fn bucket(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        v4 @ IpAddr::V4(_) => v4,
        v6 => mask(v6, 64),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const PEER: &str = "10.0.0.2";

    #[test]
    fn entries_with_and_without_ports() {
        assert_eq!(parse_entry(" 192.0.2.1 "), Some(ip("192.0.2.1")));
        assert_eq!(parse_entry("192.0.2.1:5678"), Some(ip("192.0.2.1")));
        assert_eq!(parse_entry("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_entry("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(parse_entry("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_entry("::ffff:192.0.2.1"), Some(ip("192.0.2.1")), "mapped IPv4 is IPv4");
        for bad in ["", "unknown", "192.0.2.1:99999", "[192.0.2.1]", "2001:db8::1:443:x", "_hidden", "1.2.3"] {
            assert_eq!(parse_entry(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_count_takes_the_entry_the_outermost_proxy_wrote() {
        let one = TrustedProxies::Hops(1);
        // The client's own first line says anything; the proxy's entry is the last one.
        assert_eq!(client_address(["203.0.113.1", "198.51.100.7"], ip(PEER), &one), ip("198.51.100.7"));
        assert_eq!(client_address(["203.0.113.1, 198.51.100.7"], ip(PEER), &one), ip("198.51.100.7"));
        // HAProxy's new line behind another proxy's appended entry: lines are joined in order.
        let two = TrustedProxies::Hops(2);
        assert_eq!(client_address(["6.6.6.6, 198.51.100.7", "10.1.1.1"], ip(PEER), &two), ip("198.51.100.7"));
        assert_eq!(client_address(["198.51.100.7:5555"], ip(PEER), &one), ip("198.51.100.7"));
        // Missing, too short, or unreadable where the client should be: the peer.
        assert_eq!(client_address(Vec::<&str>::new(), ip(PEER), &one), ip(PEER));
        assert_eq!(client_address(["198.51.100.7"], ip(PEER), &two), ip(PEER));
        assert_eq!(client_address(["198.51.100.7, garbage"], ip(PEER), &one), ip(PEER));
        assert_eq!(client_address(["198.51.100.7"], ip(PEER), &TrustedProxies::None), ip(PEER));
    }

    #[test]
    fn a_list_walks_past_the_proxies() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.168.1.5/32,2001:db8:ffff::/48").unwrap();
        assert_eq!(client_address(["203.0.113.9, 198.51.100.7, 10.9.9.9"], ip(PEER), &proxies), ip("198.51.100.7"));
        assert_eq!(client_address(["198.51.100.7", "192.168.1.5:80"], ip(PEER), &proxies), ip("198.51.100.7"));
        assert_eq!(
            client_address(["[2001:db8:1::5]:1234", "2001:db8:ffff::1"], ip("2001:db8:ffff::2"), &proxies),
            ip("2001:db8:1::5")
        );
        // A peer that is not a proxy connected directly: what it says is not read.
        assert_eq!(client_address(["198.51.100.7"], ip("203.0.113.50"), &proxies), ip("203.0.113.50"));
        // Unreadable before any client address: the peer.
        assert_eq!(client_address(["198.51.100.7, nonsense, 10.1.1.1"], ip(PEER), &proxies), ip(PEER));
        // All proxies: the furthest.
        assert_eq!(client_address(["10.5.5.5, 10.6.6.6"], ip(PEER), &proxies), ip("10.5.5.5"));
    }

    #[test]
    fn settings_text() {
        assert_eq!(TrustedProxies::parse("2"), Ok(TrustedProxies::Hops(2)));
        assert_eq!(TrustedProxies::parse(" 0 "), Ok(TrustedProxies::None));
        assert!(TrustedProxies::parse("17").is_err());
        assert!(TrustedProxies::parse("99999999999999999999999").is_err());
        assert!(TrustedProxies::parse("").is_err());
        assert!(TrustedProxies::parse(",").is_err());
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("10.0.0.0/").is_err());
        assert!(TrustedProxies::parse("10.0.0.0/+8").is_err());
        assert!(TrustedProxies::parse("proxy.internal").is_err());
        let Ok(TrustedProxies::Cidrs(list)) = TrustedProxies::parse("10.1.2.3/8,::1") else { panic!("a list") };
        assert!(list[0].contains(ip("10.200.0.1")) && !list[0].contains(ip("11.0.0.1")));
        assert!(list[1].contains(ip("::1")) && !list[1].contains(ip("::2")));
        assert!(!list[0].contains(ip("::ffff:10.0.0.1")), "families do not mix (addresses are made canonical first)");
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("198.51.100.7")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), bucket(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(bucket(ip("2001:db8:1:2::1")), bucket(ip("2001:db8:1:3::1")));
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(bucket(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_ne!(bucket(ip("192.0.2.1")), bucket(ip("192.0.2.2")), "IPv4 is counted per address");
        assert_eq!(bucket(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        // Whatever header text a client sends (any Unicode, any number of lines), the answer is the
        // peer or an address that is in the header, and nothing panics.
        #[test]
        fn any_header_text(
            lines in proptest::collection::vec("\\PC*", 0..4),
            structured in proptest::collection::vec("(\\[?[0-9a-f:.]{0,20}\\]?(:[0-9]{0,6})?)(, ?[0-9.:\\[\\]a-f]{0,20}){0,4}", 0..4),
            hops in 0usize..6,
            list in "\\PC*",
        ) {
            let peer = ip(PEER);
            for lines in [&lines, &structured] {
                let from_header: Vec<IpAddr> =
                    lines.iter().flat_map(|l| l.split(',')).filter_map(parse_entry).collect();
                let mut modes = vec![TrustedProxies::None, TrustedProxies::Hops(hops), TrustedProxies::parse("10.0.0.0/8").unwrap()];
                if let Ok(t) = TrustedProxies::parse(&list) {
                    modes.push(t);
                }
                for mode in &modes {
                    let client = client_address(lines.iter().map(String::as_str), peer, mode);
                    prop_assert!(client == peer || from_header.contains(&client), "{:?} from {:?}", client, lines);
                    let _ = bucket(client);
                }
            }
            let _ = Cidr::parse(&list);
        }
    }
}
