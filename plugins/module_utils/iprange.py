# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure helpers for Spiderpool IP sets (no I/O).

Spiderpool writes address sets (``spec.ips``, ``spec.excludeIPs``) as a list of single
addresses and ``first-last`` ranges, and its mutating webhook rewrites them into a sorted,
merged list (contiguous addresses become ``a-b``, isolated ones stay bare). Sets are kept here
as sorted, merged intervals ``(version, first, last)`` of integers so that comparing, subtracting
and overlap checks work on ranges of any size (an IPv6 range may hold 2**64 addresses).
"""

from __future__ import annotations

import ipaddress


class IPRangeError(ValueError):
    """An entry is not an IP address or a ``first-last`` range."""


def parse_ip(value, what='address'):
    """Return an ``ipaddress`` object for ``value`` or raise IPRangeError naming it."""
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise IPRangeError('%s %r is not an IP address' % (what, value)) from None


def _parse_entry(entry, what):
    text = str(entry).strip()
    if '-' in text:
        first_text, _sep, last_text = text.partition('-')
        first, last = parse_ip(first_text, what), parse_ip(last_text, what)
        if first.version != last.version:
            raise IPRangeError('%s %r mixes IPv4 and IPv6' % (what, entry))
        if int(first) > int(last):
            raise IPRangeError('%s %r: first address is above the last one' % (what, entry))
        return (first.version, int(first), int(last))
    ip = parse_ip(text, what)
    return (ip.version, int(ip), int(ip))


def merge(intervals):
    """Sort intervals and join those that overlap or touch."""
    merged = []
    for version, first, last in sorted(intervals):
        if merged and merged[-1][0] == version and first <= merged[-1][2] + 1:
            if last > merged[-1][2]:
                merged[-1] = (version, merged[-1][1], last)
        else:
            merged.append((version, first, last))
    return merged


def parse(entries, what='address'):
    """Parse Spiderpool ``ips`` entries (addresses and ``a-b`` ranges) into merged intervals."""
    if isinstance(entries, str):
        entries = [entries]
    return merge(_parse_entry(entry, what) for entry in entries or [])


def _text(version, value):
    return str(ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value))


def format_ranges(intervals):
    """Canonical webhook form: sorted, contiguous runs as ``a-b``, isolated addresses bare."""
    out = []
    for version, first, last in merge(intervals):
        if first == last:
            out.append(_text(version, first))
        else:
            out.append('%s-%s' % (_text(version, first), _text(version, last)))
    return out


def canonical(entries):
    """Canonical form of a list of ``ips`` entries (what the webhook stores)."""
    return format_ranges(parse(entries))


def size(intervals):
    """Number of addresses in a set."""
    return sum(last - first + 1 for _version, first, last in intervals)


def intersect(left, right):
    """Addresses present in both sets (both merged), as merged intervals."""
    out = []
    i = j = 0
    while i < len(left) and j < len(right):
        lv, lf, ll = left[i]
        rv, rf, rl = right[j]
        if (lv, ll) < (rv, rf):
            i += 1
            continue
        if (rv, rl) < (lv, lf):
            j += 1
            continue
        out.append((lv, max(lf, rf), min(ll, rl)))
        if (lv, ll) < (rv, rl):
            i += 1
        else:
            j += 1
    return out


def subtract(left, right):
    """Addresses of ``left`` not in ``right`` (both merged), as merged intervals."""
    out = []
    for version, first, last in left:
        cursor = first
        for rv, rf, rl in right:
            if rv != version or rl < cursor or rf > last:
                continue
            if rf > cursor:
                out.append((version, cursor, rf - 1))
            cursor = max(cursor, rl + 1)
            if cursor > last:
                break
        if cursor <= last:
            out.append((version, cursor, last))
    return out


def contains(intervals, address):
    """True when ``address`` (text or ipaddress object) is in the set."""
    ip = parse_ip(address)
    value = int(ip)
    return any(v == ip.version and first <= value <= last for v, first, last in intervals)


def addresses(intervals, limit=None):
    """The addresses of a set as text, lowest first (at most ``limit`` of them)."""
    out = []
    for version, first, last in intervals:
        for value in range(first, last + 1):
            if limit is not None and len(out) >= limit:
                return out
            out.append(_text(version, value))
    return out


def network_interval(network):
    """The whole of an ``ipaddress`` network as one interval."""
    return (network.version, int(network.network_address), int(network.broadcast_address))


def reserved_interval_set(network):
    """Addresses Alibaba reserves in a vSwitch: the first and the last three (IPv4) or nine (IPv6)."""
    first, last = int(network.network_address), int(network.broadcast_address)
    tail = 3 if network.version == 4 else 9
    return merge([(network.version, first, first), (network.version, max(first, last - tail + 1), last)])


def first_overlap(named_sets):
    """First address held by two different sets, as ``(address, name_a, name_b)``, or None.

    ``named_sets`` is an iterable of ``(name, merged intervals)``. Sorted by start, any overlap
    shows up between neighbours, so one pass is enough.
    """
    spans = sorted((version, first, last, name) for name, intervals in named_sets for version, first, last in intervals)
    for (v1, _f1, l1, n1), (v2, f2, _l2, n2) in zip(spans, spans[1:]):
        if v1 == v2 and f2 <= l1 and n1 != n2:
            return _text(v2, f2), n1, n2
    return None
