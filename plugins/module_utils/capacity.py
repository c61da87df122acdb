# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure day-2 capacity arithmetic (no I/O): ENI addresses against SpiderIPPools.

``report`` gives one row per node x interface x IP family (addresses in the cloud, in the pool,
allocated to pods, free, quota head room, drift both ways) and the stale pools of nodes that left;
``topup_plan`` turns low rows into bounded count-based assignments; ``release_plan`` picks the
addresses of removed nodes' ENIs that no pool and no pod holds. Pool names and interfaces come
from the pool planner, so the rows name exactly the pools ``spiderpool_networks`` manages.
"""

from __future__ import annotations

from ansible_collections.underlay.alicloud.plugins.module_utils import iprange
# The planner's per-node resolution (node name, interface of each ENI, pool name) is reused as is,
# so a row and the pool the planner would make for it can never disagree.
from ansible_collections.underlay.alicloud.plugins.module_utils.planner import (
    DISCOVERED_INTERFACES_VAR, ENI_LABEL, FAMILY_LABEL, INTERFACE_LABEL, INTERFACE_MAP_VAR, MANAGED_BY, MANAGED_BY_LABEL,
    NODE_LABEL, NODE_NAME_VAR, PlanError,
    _host_items, _node_plan, _render_name, merge_options)
from ansible_collections.underlay.alicloud.plugins.module_utils.spiderpool_sync import allocated_ips, usable

SCHEMA = 'underlay.alicloud/capacity-report/v1'
# Host variables the report reads; the filter underlay_capacity_facts keeps only these (hostvars
# also carry ``groups``, which grows with the square of the fleet).
HOST_KEYS = (
    'inventory_hostname', 'alicloud_hostname', 'alicloud_instance_id', 'alicloud_instance_type', 'alicloud_region',
    'alicloud_eni_quota', 'alicloud_enis', NODE_NAME_VAR, INTERFACE_MAP_VAR, DISCOVERED_INTERFACES_VAR,
)
FAMILY_KEYS = {4: 'secondary_ips', 6: 'ipv6_ips'}
# Drift lists are capped in the report; the counts stay exact.
DRIFT_LIST_LIMIT = 20


class CapacityError(ValueError):
    """Settings or facts that cannot give a safe plan; nothing is changed."""


def _int_setting(settings, key, low=0):
    value = settings.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise CapacityError('%s=%r: expected a whole number of at least %d' % (key, value, low))
    return value


def check_settings(settings):
    """Validated copy of the report/top-up settings (threshold, target, families, budgets, remove_nodes)."""
    out = dict(settings)
    threshold = _int_setting(settings, 'threshold')
    target = _int_setting(settings, 'target')
    if target < threshold:
        raise CapacityError('target=%d is below threshold=%d: expected a number of free addresses to top up to, '
                            'at least the threshold' % (target, threshold))
    _int_setting(settings, 'max_per_node')
    _int_setting(settings, 'max_per_run')
    families = settings.get('families') or []
    if not families or any(str(f) not in ('4', '6') for f in families):
        raise CapacityError('families=%r: expected a non-empty list of 4 and/or 6' % (families,))
    out['families'] = sorted({int(f) for f in families})
    out['remove_nodes'] = sorted({str(n).lower() for n in settings.get('remove_nodes') or []})
    return out


def _quota_limit(quota, family):
    """Secondary addresses one ENI may hold in ``family`` (IPv4 quota counts the primary), or None."""
    quota = quota or {}
    if family == 4:
        value = quota.get('ipv4_per_eni')
        return max(0, int(value) - 1) if value is not None else None
    value = quota.get('ipv6_per_eni')
    return int(value) if value is not None else None


def _owned(pool):
    return ((pool.get('metadata') or {}).get('labels') or {}).get(MANAGED_BY_LABEL) == MANAGED_BY


def _sample(intervals):
    return iprange.addresses(intervals, DRIFT_LIST_LIMIT)


def _row(host, node, facts, iface, eni, family, name, pool, settings):
    """One report row; ``skip`` says why top-up leaves it alone."""
    cloud = iprange.parse(eni.get(FAMILY_KEYS[family]) or [])
    if family == 4 and eni.get('primary_ip'):
        cloud = iprange.subtract(cloud, iprange.parse([eni['primary_ip']]))
    spec = (pool or {}).get('spec') or {}
    in_pool = iprange.parse(spec.get('ips') or [])
    held = allocated_ips(pool) if pool else {}
    taken = iprange.parse(list(held))
    free = iprange.subtract(usable(spec), taken) if pool else []
    quota = facts.get('alicloud_eni_quota') or {}
    limit = _quota_limit(quota, family)
    cloud_count = iprange.size(cloud)
    skip = None
    if pool and not _owned(pool):
        skip = 'pool %s is not owned by the collection (no label %s=%s): left alone' % (
            pool['metadata']['name'], MANAGED_BY_LABEL, MANAGED_BY)
    elif family == 6 and limit == 0:
        skip = 'instance type %s has no IPv6 addresses per ENI (EniIpv6AddressQuantity 0)' % facts.get('alicloud_instance_type')
    elif limit is None:
        skip = 'the quota of instance type %s is unknown (alicloud_eni_quota missing)' % facts.get('alicloud_instance_type')
    cloud_only = iprange.subtract(cloud, in_pool)
    enis = quota.get('enis')
    row = {
        'node': node, 'host': host, 'instance_id': facts.get('alicloud_instance_id'),
        'instance_type': facts.get('alicloud_instance_type'), 'region': facts.get('alicloud_region'),
        'interface': iface, 'eni_id': eni.get('id'), 'family': family,
        'pool': name,
        'pool_exists': pool is not None, 'owned': pool is None or _owned(pool),
        'cloud': cloud_count, 'in_pool': iprange.size(in_pool), 'allocated': len(held),
        'free': iprange.size(free),
        # On the ENI but in no pool yet: the pool step adds them (join, interrupted top-up).
        'pending': iprange.size(cloud_only),
        'eni_ip_headroom': max(0, limit - cloud_count) if limit is not None else None,
        'node_eni_headroom': max(0, int(enis) - len(facts.get('alicloud_enis') or [])) if enis is not None else None,
        'cloud_only': _sample(cloud_only),
        'pool_only': _sample(iprange.subtract(in_pool, cloud)),
        'skip': skip,
    }
    row['low'] = row['free'] < settings['threshold']
    # What pods can get once the pool step made the pool equal to the ENI: top-up decides on this,
    # so addresses assigned by an interrupted run are never assigned again.
    row['available'] = row['free'] if skip else cloud_count - iprange.size(iprange.intersect(cloud, taken))
    if skip is None and limit is not None and settings['target'] > limit:
        raise CapacityError('target=%d is beyond the quota of %s %s IPv%d (instance type %s allows %d per ENI): expected '
                            'a number of free addresses from threshold (%d) to %d' % (
                                settings['target'], node, iface, family, facts.get('alicloud_instance_type'), limit,
                                settings['threshold'], limit))
    return row


def _label_family(value):
    return int(value[3:]) if value in ('ipv4', 'ipv6') else None


def _pool_node(pool):
    labels = (pool.get('metadata') or {}).get('labels') or {}
    return labels.get(NODE_LABEL) or next(iter((pool.get('spec') or {}).get('nodeName') or []), None)


def report(hosts, pools, settings, pool_options=None):
    """The capacity report: ``{schema, settings, rows, stale_pools, summary}``.

    ``hosts``: host facts (list or hostvars mapping) of the nodes; ``pools``: every SpiderIPPool
    as listed (status included). Nodes named in ``settings['remove_nodes']`` are treated as gone.
    Two more keys are for the caller, not the report: ``live_hosts`` (the facts dicts of the nodes
    still in the cluster, the same objects as given) and ``live_enis`` (``{eni id: node}`` of them).
    """
    settings = check_settings(settings)
    try:
        options = merge_options(pool_options)
        items = _host_items(hosts)
    except PlanError as exc:
        raise CapacityError(str(exc)) from None
    by_name = dict((p['metadata']['name'], p) for p in pools or [])
    rows, live_nodes, live_enis, live_hosts, seen_names = [], {}, {}, [], set()
    for host, facts in items:
        try:
            node, chosen = _node_plan(host, facts, options)
        except PlanError as exc:
            raise CapacityError(str(exc)) from None
        if node in settings['remove_nodes']:
            continue
        live_nodes[node] = host
        live_hosts.append(facts)
        for eni in facts.get('alicloud_enis') or []:
            live_enis[eni.get('id')] = node
        for iface, eni in chosen:
            for family in settings['families']:
                if family == 6 and not eni.get('ipv6_cidr'):
                    continue
                try:
                    name = _render_name(options['pool_name_template'], 'pool_name_template', node=node, interface=iface,
                                        family=family, eni=eni.get('id', ''), instance=facts.get('alicloud_instance_id', ''))
                except PlanError as exc:
                    raise CapacityError(str(exc)) from None
                seen_names.add(name)
                rows.append(_row(host, node, facts, iface, eni, family, name, by_name.get(name), settings))
    stale = []
    for name, pool in sorted(by_name.items()):
        node = _pool_node(pool)
        if name in seen_names or not _owned(pool) or node in live_nodes:
            continue
        held = allocated_ips(pool)
        labels = pool['metadata'].get('labels') or {}
        spec = pool.get('spec') or {}
        stale.append({
            'pool': name, 'node': node, 'eni_id': labels.get(ENI_LABEL), 'interface': labels.get(INTERFACE_LABEL),
            'family': spec.get('ipVersion') or _label_family(labels.get(FAMILY_LABEL)),
            'in_pool': iprange.size(iprange.parse(spec.get('ips') or [])),
            'allocated': len(held), 'action': 'keep' if held else 'delete',
            'reason': ('pods hold %s' % ', '.join('%s (pod %s)' % item for item in sorted(held.items()))) if held
            else 'node %s is gone and no pod holds an address' % node,
        })
    summary = {
        'nodes': len(live_nodes), 'rows': len(rows),
        'cloud': sum(r['cloud'] for r in rows), 'in_pool': sum(r['in_pool'] for r in rows),
        'allocated': sum(r['allocated'] for r in rows), 'free': sum(r['free'] for r in rows),
        'low': sum(1 for r in rows if r['low'] and not r['skip']),
        'cloud_only': sum(1 for r in rows if r['cloud_only']), 'pool_only': sum(1 for r in rows if r['pool_only']),
        'missing_pools': sum(1 for r in rows if not r['pool_exists'] and r['cloud']),
        'skipped': sum(1 for r in rows if r['skip']),
        'stale_pools': len(stale), 'stale_pools_kept': sum(1 for s in stale if s['action'] == 'keep'),
    }
    return {'schema': SCHEMA, 'settings': settings, 'rows': rows, 'stale_pools': stale, 'summary': summary,
            'live_enis': live_enis, 'live_hosts': live_hosts}


def topup_plan(rows, settings):
    """Count-based assignments for rows whose available addresses are under the threshold.

    Available = addresses on the ENI that no pod holds, i.e. what the pool offers once the pool
    step has made it equal to the ENI (for a skipped row: the pool's free addresses).

    Each row gets ``target - available`` more addresses, cut to the ENI's quota head room, to
    ``max_per_node`` per node and to ``max_per_run`` in all; the most starved rows go first.
    Returns ``{'assign': [...], 'limited': [...], 'full': [...]}``; ``full`` rows are ENIs at their
    quota, with ``new_eni_possible`` when the node has room for another ENI.
    """
    per_node, total = {}, 0
    assign, limited, full = [], [], []
    candidates = [r for r in rows if not r['skip'] and r['available'] < settings['threshold']]
    for row in sorted(candidates, key=lambda r: (r['available'], r['node'], r['interface'], r['family'])):
        want = settings['target'] - row['available']
        room = row['eni_ip_headroom'] or 0
        node_left = settings['max_per_node'] - per_node.get(row['node'], 0)
        count = max(0, min(want, room, node_left, settings['max_per_run'] - total))
        where = '%s %s IPv%d' % (row['node'], row['interface'], row['family'])
        if room < want:
            full.append({'node': row['node'], 'interface': row['interface'], 'family': row['family'], 'eni_id': row['eni_id'],
                         'missing': want - room, 'new_eni_possible': bool(row['node_eni_headroom'])})
        if count < min(want, room):
            limited.append('%s: %d of %d addresses this run (max_per_node %d, max_per_run %d)'
                           % (where, count, min(want, room), settings['max_per_node'], settings['max_per_run']))
        if not count:
            continue
        per_node[row['node']] = per_node.get(row['node'], 0) + count
        total += count
        assign.append({'node': row['node'], 'interface': row['interface'], 'family': row['family'], 'eni_id': row['eni_id'],
                       'region': row['region'], 'pool': row['pool'], 'count': count})
    return {'assign': assign, 'limited': limited, 'full': full}


def release_plan(enis, pools, live_enis):
    """Addresses of removed nodes' ENIs that may be unassigned: in no pool and held by no pod.

    ``enis``: normalised ENI records (``id``, ``secondary_ips``, ``ipv6_ips``); ``live_enis``:
    ``{eni id: node}`` of the nodes still in the cluster (never released from). Returns
    ``{'release': [{eni_id, ipv4, ipv6}], 'kept': [messages]}``.
    """
    held = []
    for pool in pools or []:
        held.extend(iprange.parse(((pool.get('spec') or {}).get('ips') or [])))
        held.extend(iprange.parse(list(allocated_ips(pool))))
    held = iprange.merge(held)
    release, kept = [], []
    for eni in sorted(enis, key=lambda e: e['id']):
        if eni['id'] in live_enis:
            kept.append('%s belongs to node %s, which is still in the cluster: not released' % (eni['id'], live_enis[eni['id']]))
            continue
        entry = {'eni_id': eni['id']}
        for family, key in sorted(FAMILY_KEYS.items()):
            addresses = iprange.parse(eni.get(key) or [])
            busy = iprange.intersect(addresses, held)
            if busy:
                kept.append('%s keeps %s: still in a pool or held by a pod' % (eni['id'], ', '.join(iprange.addresses(busy))))
            entry['ipv%d' % family] = iprange.addresses(iprange.subtract(addresses, held))
        if entry['ipv4'] or entry['ipv6']:
            release.append(entry)
    return {'release': release, 'kept': kept}


def table(result):
    """The report as aligned text lines for the terminal."""
    header = ('NODE', 'IFACE', 'FAM', 'CLOUD', 'POOL', 'ALLOC', 'FREE', '+IP', '+ENI', 'FLAGS')
    lines = [header]
    for row in result['rows']:
        flags = []
        if row['skip']:
            flags.append('skip: ' + row['skip'])
        elif row['low']:
            flags.append('LOW')
        if not row['pool_exists'] and row['cloud']:
            flags.append('no pool yet')
        if row['cloud_only']:
            flags.append('cloud-only %s' % ','.join(row['cloud_only'][:3]) + ('...' if len(row['cloud_only']) > 3 else ''))
        if row['pool_only']:
            flags.append('pool-only %s' % ','.join(row['pool_only'][:3]) + ('...' if len(row['pool_only']) > 3 else ''))
        lines.append((row['node'], row['interface'], 'v%d' % row['family'], str(row['cloud']), str(row['in_pool']),
                      str(row['allocated']), str(row['free']), _text(row['eni_ip_headroom']), _text(row['node_eni_headroom']),
                      '; '.join(flags)))
    for stale in result['stale_pools']:
        lines.append((stale['node'] or '?', stale['interface'] or '?', 'v%s' % (stale['family'] or '?'), '-', str(stale['in_pool']),
                      str(stale['allocated']), '-', '-', '-', 'stale pool %s: %s (%s)' % (stale['pool'], stale['action'], stale['reason'])))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return [('  '.join(cell.ljust(width) for cell, width in zip(line, widths)) + '  ' + line[-1]).rstrip() for line in lines]


def _text(value):
    return '?' if value is None else str(value)
