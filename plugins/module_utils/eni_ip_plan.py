# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure planning of secondary-address changes on one ENI (no I/O).

The module ``ecs_eni_ip`` and the role ``alicloud_enis`` decide what to assign and what to
unassign here, so that quota checks, protection of addresses in use and the batching of API
calls are unit-tested without a cloud.
"""

import ipaddress

from ansible_collections.underlay.alicloud.plugins.module_utils.ipmath import ip_sort_key

# Per-call limits: Alibaba documents 1-10 IPv6 addresses per call everywhere, and 10 IPv4
# addresses per call in its oldest docs (newer ones allow more); 10 is safe for both.
IPV4_BATCH = 10
IPV6_BATCH = 10


class EniIpPlanError(ValueError):
    """The requested address state is impossible or unsafe; nothing must be changed."""


def sort_ips(values):
    """Sort addresses numerically (string order puts .10 before .9), without duplicates."""
    return sorted(set(values), key=ip_sort_key)


def _parse_list(values, version, what):
    parsed = []
    for value in values or []:
        try:
            ip = ipaddress.ip_address(str(value).strip())
        except ValueError:
            raise EniIpPlanError("%s: %r is not an IP address" % (what, value)) from None
        if ip.version != version:
            raise EniIpPlanError("%s: %s is not an IPv%d address" % (what, value, version))
        parsed.append(str(ip))
    return parsed


def plan_family(current, count=None, addresses=None, purge=False, protected=(), limit=None,
                version=4, primary=None, label='secondary_private_ip_addresses'):
    """Plan one address family of one ENI.

    ``current``: addresses the ENI has now (secondaries only). ``count``: desired number, or
    None. ``addresses``: addresses that must be present. ``purge``: remove what is neither
    listed nor needed for ``count``. ``limit``: most addresses the ENI may hold in this family
    (secondaries only) or None. Returns ``{'add': [...], 'add_count': n, 'remove': [...],
    'after': [...]}`` where ``add`` are explicit addresses and ``add_count`` addresses the cloud
    picks.
    """
    current = sort_ips(_parse_list(current, version, label))
    wanted = sort_ips(_parse_list(addresses, version, label))
    protected = set(_parse_list(protected, version, 'protected_ips')) if protected else set()
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise EniIpPlanError("%s count must be a non-negative integer, got %r" % (label, count))
    if primary is not None and primary in wanted:
        raise EniIpPlanError("%s: %s is the ENI's primary address, it cannot be a secondary one" % (label, primary))
    if count is not None and count < len(wanted):
        raise EniIpPlanError("%s: %d addresses listed but the count asks for only %d" % (label, len(wanted), count))

    have = set(current)
    add = [ip for ip in wanted if ip not in have]
    kept = set(current) | set(add)
    remove = []
    if purge:
        extra = [ip for ip in current if ip not in set(wanted)]
        if count is None:
            remove = extra
        elif len(kept) > count:
            # Drop unprotected extras first, highest addresses first, so the result is stable.
            surplus = len(kept) - count
            candidates = [ip for ip in reversed(extra) if ip not in protected]
            remove = candidates[:surplus]
            if len(remove) < surplus:
                held = sorted((set(extra) - set(remove)) & protected, key=ip_sort_key)
                raise EniIpPlanError(
                    "refusing to shrink to %d %s: %s in use (protected)" % (count, label, ', '.join(held)))
    in_use = sorted(set(remove) & protected, key=ip_sort_key)
    if in_use:
        raise EniIpPlanError("refusing to unassign %s: in use (protected_ips)" % ', '.join(in_use))

    after_fixed = kept - set(remove)
    add_count = max(0, count - len(after_fixed)) if count is not None else 0
    total = len(after_fixed) + add_count
    if limit is not None and total > limit:
        raise EniIpPlanError(
            "%d %s requested but the quota allows %d per ENI" % (total, label, limit))
    return {
        'add': add,
        'add_count': add_count,
        'remove': sort_ips(remove),
        'after': sort_ips(after_fixed),
        'total_after': total,
    }


def batches(values, size):
    """Split a list into API-sized chunks."""
    return [values[i:i + size] for i in range(0, len(values), size)]


def count_batches(count, size):
    """Split a number of addresses to assign into API-sized counts."""
    full, rest = divmod(count, size)
    return [size] * full + ([rest] if rest else [])
