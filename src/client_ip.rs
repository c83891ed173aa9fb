//! Who the client is, for rate limits and logs. Behind a load balancer every connection
//! comes from the proxy, so the proxy's forwarding header names the client; but any
//! client can send that header too, so it is believed only when the TCP peer is one of
//! `server.trusted_proxies`, and only up to the right-most hop that is not trusted.

use std::net::IpAddr;

use ipnet::IpNet;
use salvo::http::HeaderMap;

use crate::config::{ForwardedHeader, ServerSettings};

/// Longest forwarding chain looked at: a longer one is a client stuffing the header.
const MAX_HOPS: usize = 32;

#[derive(Debug, Clone)]
pub struct ClientIpResolver {
    trusted: Vec<IpNet>,
    header: ForwardedHeader,
}

impl ClientIpResolver {
    pub fn new(server: &ServerSettings) -> Self {
        Self {
            trusted: server.trusted_proxies.clone(),
            header: server.forwarded_header,
        }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client address: the peer itself unless the peer is a trusted proxy, in which
    /// case the right-most forwarding hop that is not a trusted proxy.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if self.trusted.is_empty() || !self.is_trusted(peer) {
            return peer;
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => x_forwarded_for(headers),
            ForwardedHeader::Forwarded => forwarded_for(headers),
        };
        let mut client = peer;
        for hop in hops.iter().rev().take(MAX_HOPS) {
            // An unreadable hop ends the chain we can vouch for: the last trusted address
            // seen is then the best answer (it is at least not attacker-chosen).
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !self.is_trusted(ip) {
                return ip;
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 peers (dual-stack listeners) compare as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn x_forwarded_for(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|hop| hop.trim().to_string())
        .collect()
}

/// The `for=` parameters of RFC 7239 `Forwarded` elements, in order.
fn forwarded_for(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("forwarded")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                .map(|(_, value)| value.trim().trim_matches('"').to_string())
                .unwrap_or_default()
        })
        .collect()
}

/// `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok().map(canonical);
    }
    let (host, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok().map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use salvo::http::HeaderValue;

    fn resolver(trusted: &[&str], header: ForwardedHeader) -> ClientIpResolver {
        ClientIpResolver {
            trusted: trusted
                .iter()
                .map(|net| net.parse().expect("cidr"))
                .collect(),
            header,
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn untrusted_peers_cannot_choose_their_address() {
        let spoof = headers(&[("x-forwarded-for", "1.2.3.4")]);
        let none = resolver(&[], ForwardedHeader::XForwardedFor);
        assert_eq!(none.resolve(ip("198.51.100.9"), &spoof), ip("198.51.100.9"));
        let some = resolver(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        assert_eq!(some.resolve(ip("198.51.100.9"), &spoof), ip("198.51.100.9"));
    }

    #[test]
    fn trusted_proxy_names_the_right_most_untrusted_hop() {
        let r = resolver(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        // The client forged "1.2.3.4"; the edge proxy appended the real client, then an
        // inner proxy appended the edge proxy.
        let chain = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.7, 10.1.1.1")]);
        assert_eq!(r.resolve(ip("10.2.2.2"), &chain), ip("203.0.113.7"));
        // Several header lines form one list.
        let split = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "203.0.113.8"),
        ]);
        assert_eq!(r.resolve(ip("10.2.2.2"), &split), ip("203.0.113.8"));
        // No header: the proxy itself.
        assert_eq!(r.resolve(ip("10.2.2.2"), &HeaderMap::new()), ip("10.2.2.2"));
        // Garbage to the right of every trusted hop stops at the last trusted address.
        let garbage = headers(&[("x-forwarded-for", "203.0.113.7, unknown, 10.1.1.1")]);
        assert_eq!(r.resolve(ip("10.2.2.2"), &garbage), ip("10.1.1.1"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let both = headers(&[
            ("x-forwarded-for", "203.0.113.7"),
            (
                "forwarded",
                "for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\"",
            ),
        ]);
        let xff = resolver(&["127.0.0.0/8"], ForwardedHeader::XForwardedFor);
        assert_eq!(xff.resolve(ip("127.0.0.2"), &both), ip("203.0.113.7"));
        let fwd = resolver(&["127.0.0.0/8"], ForwardedHeader::Forwarded);
        assert_eq!(fwd.resolve(ip("127.0.0.2"), &both), ip("2001:db8::1"));
    }

    #[test]
    fn mapped_ipv6_peers_match_ipv4_ranges_and_ports_are_ignored() {
        let r = resolver(&["127.0.0.2/32"], ForwardedHeader::XForwardedFor);
        let chain = headers(&[("x-forwarded-for", "203.0.113.7:5555")]);
        assert_eq!(r.resolve(ip("::ffff:127.0.0.2"), &chain), ip("203.0.113.7"));
    }
}
