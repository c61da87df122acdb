# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vSwitch address arithmetic (pure, IPv4 and IPv6).

Alibaba reserves the first and the last three addresses of an IPv4 vSwitch CIDR, and the first
and the last nine of an IPv6 vSwitch CIDR. The gateway ECS uses is the lowest of the reserved
tail: last address − 2 (x.x.x.253 in a /24).
"""

from __future__ import annotations

import ipaddress

_RESERVED_TAIL = {4: 3, 6: 9}


def _network(cidr):
    try:
        return ipaddress.ip_network(str(cidr), strict=True)
    except ValueError as exc:
        raise ValueError('%r is not a CIDR block: %s' % (cidr, exc)) from None


def vswitch_gateway(cidr):
    """Gateway address of a vSwitch: the last address of ``cidr`` minus 2, as a string."""
    net = _network(cidr)
    return str(net.broadcast_address - 2)


def reserved_addresses(cidr):
    """The addresses Alibaba reserves in ``cidr`` (first, then the tail), as strings."""
    net = _network(cidr)
    tail = _RESERVED_TAIL[net.version]
    last = net.broadcast_address
    return [str(net.network_address)] + [str(last - i) for i in range(tail - 1, -1, -1)]


def is_reserved(ip, cidr):
    """True when ``ip`` is one of the reserved addresses of ``cidr``."""
    net = _network(cidr)
    addr = ipaddress.ip_address(str(ip))
    if addr.version != net.version or addr not in net:
        return False
    return addr == net.network_address or int(net.broadcast_address) - int(addr) < _RESERVED_TAIL[net.version]


def usable_count(cidr):
    """Number of addresses in ``cidr`` that can be assigned (size minus reserved)."""
    net = _network(cidr)
    return max(0, net.num_addresses - 1 - _RESERVED_TAIL[net.version])


def ip_sort_key(ip):
    """Numeric sort key for IPv4/IPv6 strings (IPv4 before IPv6)."""
    addr = ipaddress.ip_address(str(ip))
    return (addr.version, int(addr))


def canonical_ip(ip):
    """Canonical text of an address (compressed lower-case IPv6)."""
    return str(ipaddress.ip_address(str(ip).strip()))
