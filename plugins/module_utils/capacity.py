# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure day-2 capacity arithmetic (no I/O): ENI addresses against SpiderIPPools.

``report`` gives one row per node x interface x IP family (addresses in the cloud, in the pool,
allocated to pods, free, quota head room, drift both ways), the nodes of the inventory that the
cluster does not know and the stale pools of nodes that left; ``topup_plan`` turns low rows into
bounded count-based assignments and, for full ENIs, new ENIs; ``release_plan`` picks the
addresses of removed nodes' ENIs that no pool and no pod holds. Pool names and interfaces come
from the pool planner, so the rows name exactly the pools ``spiderpool_networks`` manages.
"""

from __future__ import annotations

from ansible_collections.underlay.alicloud.plugins.module_utils import iprange
from ansible_collections.underlay.alicloud.plugins.module_utils.facts import eni_order_key
# The planner's per-node resolution (node name, interface of each ENI, pool name) is reused as is,
# so a row and the pool the planner would make for it can never disagree.
from ansible_collections.underlay.alicloud.plugins.module_utils.planner import (
    DISCOVERED_INTERFACES_VAR, ENI_LABEL, FAMILY_LABEL, INTERFACE_LABEL, INTERFACE_MAP_VAR, MANAGED_BY, MANAGED_BY_LABEL,
    NODE_LABEL, NODE_NAME_VAR, PlanError,
    _host_items, _interface_for, _node_plan, _render_name, merge_options)
from ansible_collections.underlay.alicloud.plugins.module_utils.spiderpool_sync import allocated_ips, usable

SCHEMA = 'underlay.alicloud/capacity-report/v1'
# Host variables the report reads; the filter underlay_capacity_facts keeps only these (hostvars
# also carry ``groups``, which grows with the square of the fleet).
HOST_KEYS = (
    'inventory_hostname', 'alicloud_hostname', 'alicloud_instance_id', 'alicloud_instance_type', 'alicloud_region',
    'alicloud_eni_quota', 'alicloud_enis', NODE_NAME_VAR, INTERFACE_MAP_VAR, DISCOVERED_INTERFACES_VAR,
)
FAMILY_KEYS = {4: 'secondary_ips', 6: 'ipv6_ips'}
# Cloud tags of the ENIs top-up creates: ownership (as on the collection's EIPs and NAT gateways) and
# the instance it is for, so that an ENI created by a run that died before attaching it is found
# and attached by the next run instead of leaking.
ENI_TAG_KEY = 'managed-by'
ENI_TAG_VALUE = MANAGED_BY
ENI_INSTANCE_TAG = 'underlay.alicloud/instance'

# Addresses CreateNetworkInterface gives a new ENI at most (an unattached ENI's limits).
CREATE_LIMITS = {4: 49, 6: 10}
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
    out['remove_missing_nodes'] = bool(settings.get('remove_missing_nodes'))
    out['new_enis'] = bool(settings.get('new_enis'))
    out.setdefault('max_new_enis', 1)
    _int_setting(out, 'max_new_enis')
    vswitches = out.setdefault('new_eni_vswitches', {})
    if not isinstance(vswitches, dict) or not all(str(k).startswith('vsw-') and str(v).startswith('vsw-') for k, v in vswitches.items()):
        raise CapacityError('new_eni_vswitches=%r: expected a mapping {vSwitch of the full ENI: vSwitch of the new ENI} of vsw- ids'
                            % (vswitches,))
    groups = out.setdefault('new_eni_security_groups', [])
    if not isinstance(groups, list) or not all(str(g).startswith('sg-') for g in groups):
        raise CapacityError('new_eni_security_groups=%r: expected a list of sg- ids (empty: those of the full ENI)' % (groups,))
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


def _row(host, node, facts, iface, eni, family, name, pool, settings, in_cluster):
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
        'interface': iface, 'eni_id': eni.get('id'), 'vswitch_id': eni.get('vswitch_id'), 'family': family,
        'pool': name, 'in_cluster': in_cluster,
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


def _next_slot(facts, options, host, node):
    """(device index, interface) a new ENI of the node gets: the lowest free index from 1, as ECS
    hands them out, and the planner's name for it (eth<index>; a new MAC is in no interface map)."""
    used = {e.get('device_index') for e in facts.get('alicloud_enis') or []}
    index = next(i for i in range(1, len(used) + 2) if i not in used)
    try:
        iface = _interface_for(host, node, {'device_index': index}, index, {}, {})
    except PlanError as exc:
        raise CapacityError(str(exc)) from None
    excluded = bool(options['interfaces'] and iface not in options['interfaces']) or iface in options['exclude_interfaces']
    return index, iface, excluded


def _absent(host, node, facts, named, in_cluster, remove_missing):
    """The entry of a node the cluster does not know or the user named as removed."""
    if named:
        removed, reason = True, 'named in remove_nodes'
    elif remove_missing:
        removed, reason = True, 'no Node %s in the cluster: removed (remove_missing_nodes)' % node
    else:
        removed, reason = False, ('no Node %s in the cluster (deleted, or not joined yet): kept, its pools stay and top-up goes on; '
                                  'remove_missing_nodes removes it' % node)
    return {'node': node, 'host': host, 'instance_id': facts.get('alicloud_instance_id'), 'in_cluster': in_cluster,
            'eni_ids': sorted(e.get('id') for e in facts.get('alicloud_enis') or [] if e.get('id')),
            'removed': removed, 'reason': reason}


def report(hosts, pools, settings, pool_options=None, cluster_nodes=None):
    """The capacity report: ``{schema, settings, rows, absent_nodes, stale_pools, summary}``.

    ``hosts``: host facts (list or hostvars mapping) of the nodes; ``pools``: every SpiderIPPool
    as listed (status included); ``cluster_nodes``: the names of the cluster's Node objects (None:
    not known, every host counts as in the cluster). Nodes named in ``settings['remove_nodes']``,
    and with ``remove_missing_nodes`` those the cluster does not know, are treated as gone.
    Three more keys are for the caller, not the report: ``live_hosts`` (the facts dicts of the nodes
    still in the cluster, the same objects as given), ``live_enis`` (``{eni id: node}`` of them)
    and ``nodes`` (per live node what ``topup_plan`` needs to place a new ENI).
    """
    settings = check_settings(settings)
    try:
        options = merge_options(pool_options)
        items = _host_items(hosts)
    except PlanError as exc:
        raise CapacityError(str(exc)) from None
    known = None if cluster_nodes is None else {str(n).lower() for n in cluster_nodes}
    by_name = dict((p['metadata']['name'], p) for p in pools or [])
    rows, live_nodes, live_enis, live_hosts, seen_names, absent, nodes = [], {}, {}, [], set(), [], {}
    for host, facts in items:
        try:
            node, chosen = _node_plan(host, facts, options)
        except PlanError as exc:
            raise CapacityError(str(exc)) from None
        in_cluster = known is None or node in known
        named = node in settings['remove_nodes']
        if named or not in_cluster:
            absent.append(_absent(host, node, facts, named, in_cluster, settings['remove_missing_nodes']))
            if absent[-1]['removed']:
                continue
        live_nodes[node] = host
        live_hosts.append(facts)
        for eni in facts.get('alicloud_enis') or []:
            live_enis[eni.get('id')] = node
        index, iface, excluded = _next_slot(facts, options, host, node)
        nodes[node] = {'host': host, 'facts': facts, 'next_index': index, 'next_interface': iface, 'next_excluded': excluded}
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
                rows.append(_row(host, node, facts, iface, eni, family, name, by_name.get(name), settings, in_cluster))
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
        'not_in_cluster': sum(1 for a in absent if not a['in_cluster']), 'removed_nodes': sum(1 for a in absent if a['removed']),
        'stale_pools': len(stale), 'stale_pools_kept': sum(1 for s in stale if s['action'] == 'keep'),
    }
    return {'schema': SCHEMA, 'settings': settings, 'rows': rows, 'absent_nodes': absent, 'stale_pools': stale,
            'summary': summary, 'live_enis': live_enis, 'live_hosts': live_hosts, 'nodes': nodes}


def topup_plan(rows, settings, nodes=None):
    """Count-based assignments for rows whose available addresses are under the threshold.

    Available = addresses on the ENI that no pod holds, i.e. what the pool offers once the pool
    step has made it equal to the ENI (for a skipped row: the pool's free addresses).

    Each row gets ``target - available`` more addresses, cut to the ENI's quota head room, to
    ``max_per_node`` per node and to ``max_per_run`` in all; the most starved rows go first.
    Returns ``{'assign': [...], 'limited': [...], 'full': [...], 'new_enis': [...]}``; ``full``
    rows are ENIs at their quota, with ``new_eni_possible`` when the node has room for another ENI
    and ``action`` saying what this run does about it. With ``settings['new_enis']`` and ``nodes``
    (the report's), an ENI with no head room left gets a sibling: ``new_enis`` (see ``_new_eni``).
    """
    per_node, total = {}, 0
    assign, limited, full, new_enis = [], [], [], []
    candidates = [r for r in rows if not r['skip'] and r['available'] < settings['threshold']]
    for row in sorted(candidates, key=lambda r: (r['available'], r['node'], r['interface'], r['family'])):
        want = settings['target'] - row['available']
        room = row['eni_ip_headroom'] or 0
        node_left = settings['max_per_node'] - per_node.get(row['node'], 0)
        count = max(0, min(want, room, node_left, settings['max_per_run'] - total))
        where = '%s %s IPv%d' % (row['node'], row['interface'], row['family'])
        if room < want:
            entry = {'node': row['node'], 'interface': row['interface'], 'family': row['family'], 'eni_id': row['eni_id'],
                     'missing': want - room, 'new_eni_possible': bool(row['node_eni_headroom'])}
            if room:
                entry['action'] = 'only %d more fit on this ENI%s' % (room, '; a new ENI once it is full' if settings['new_enis'] else '')
            else:
                eni, entry['action'] = _new_eni(row, settings, nodes, new_enis, per_node.get(row['node'], 0), total)
                if eni:
                    new_enis.append(eni)
                    added = eni['ipv4'] + eni['ipv6']
                    per_node[row['node']] = per_node.get(row['node'], 0) + added
                    total += added
            full.append(entry)
        if count < min(want, room):
            limited.append('%s: %d of %d addresses this run (max_per_node %d, max_per_run %d)'
                           % (where, count, min(want, room), settings['max_per_node'], settings['max_per_run']))
        if not count:
            continue
        per_node[row['node']] = per_node.get(row['node'], 0) + count
        total += count
        assign.append({'node': row['node'], 'interface': row['interface'], 'family': row['family'], 'eni_id': row['eni_id'],
                       'region': row['region'], 'pool': row['pool'], 'count': count})
    return {'assign': assign, 'limited': limited, 'full': full, 'new_enis': new_enis}


def _vswitch_ipv6(nodes, vswitch_id):
    """The IPv6 CIDR of ``vswitch_id`` as some ENI of the fleet reports it (None: none known)."""
    for info in nodes.values():
        for eni in info['facts'].get('alicloud_enis') or []:
            if eni.get('vswitch_id') == vswitch_id:
                return eni.get('ipv6_cidr')
    return None


def _new_eni(row, settings, nodes, planned, node_used, run_used):
    """(new ENI or None, what this run does about the full ENI of ``row``).

    A new ENI is planned only when it is enabled, the node has room for one more ENI, no other ENI
    of the node in the target vSwitch still has room in the row's family (that one is topped up
    instead, so a run after an interrupted one never adds a second ENI), the pool options keep the
    new interface, and the budgets leave addresses for it. One new ENI per node and run, at most
    ``max_new_enis`` per run. It gets up to ``target`` addresses of each family its vSwitch has,
    within the per-ENI quota and the budgets; the caller fills in the security groups.
    """
    if not settings['new_enis']:
        return None, 'reported only: new ENIs are off (new_enis)'
    info = (nodes or {}).get(row['node'])
    facts = info['facts'] if info else {}
    quota = facts.get('alicloud_eni_quota') or {}
    enis = facts.get('alicloud_enis') or []
    if info is None or quota.get('enis') is None:
        return None, 'skip: the ENI quota of instance type %s is unknown' % facts.get('alicloud_instance_type')
    vswitch = settings['new_eni_vswitches'].get(row['vswitch_id'], row['vswitch_id'])
    limit = _quota_limit(quota, row['family'])
    key = FAMILY_KEYS[row['family']]
    roomy = [e for e in enis if e.get('vswitch_id') == vswitch and limit is not None and len(e.get(key) or []) < limit]
    if roomy:
        return None, '%s in vSwitch %s still has room for IPv%d: it is filled instead' % (roomy[0].get('id'), vswitch, row['family'])
    if not row['node_eni_headroom']:
        return None, ('skip: node %s has %d of %d ENIs (EniQuantity of %s): no room for another ENI; nothing changed'
                      % (row['node'], len(enis), quota['enis'], facts.get('alicloud_instance_type')))
    if any(p['node'] == row['node'] for p in planned):
        return None, 'a new ENI for node %s is already planned in this run' % row['node']
    if len(planned) >= settings['max_new_enis']:
        return None, 'max_new_enis=%d reached in this run: next run' % settings['max_new_enis']
    if info['next_excluded']:
        return None, ('skip: the new ENI would be %s, which the pool options leave out (interfaces, exclude_interfaces)'
                      % info['next_interface'])
    node_left = settings['max_per_node'] - node_used
    run_left = settings['max_per_run'] - run_used
    counts = {}
    for family in (4, 6):
        family_limit = _quota_limit(quota, family) or 0
        if family not in settings['families'] or (family == 6 and not _vswitch_ipv6(nodes, vswitch)):
            family_limit = 0
        counts[family] = max(0, min(settings['target'], family_limit, CREATE_LIMITS[family], node_left, run_left))
        node_left -= counts[family]
        run_left -= counts[family]
    if not counts[row['family']]:
        return None, 'budget spent (max_per_node %d, max_per_run %d): next run' % (settings['max_per_node'], settings['max_per_run'])
    eni = {'node': row['node'], 'host': info['host'], 'instance_id': facts.get('alicloud_instance_id'),
           'region': facts.get('alicloud_region'), 'name': '%s-capacity-%d' % (row['node'], info['next_index']),
           'eni_id': None, 'device_index': info['next_index'], 'interface': info['next_interface'], 'vswitch_id': vswitch,
           'security_groups': list(settings['new_eni_security_groups']), 'full_eni': row['eni_id'], 'family': row['family'],
           'ipv4': counts[4], 'ipv6': counts[6], 'eni_quota': quota,
           'tags': {ENI_TAG_KEY: ENI_TAG_VALUE, ENI_INSTANCE_TAG: facts.get('alicloud_instance_id')}}
    return eni, 'new ENI %s (%s) in vSwitch %s with %d IPv4 and %d IPv6' % (eni['name'], eni['interface'], vswitch, counts[4], counts[6])


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


# The host-facts ENI keys (DESIGN section 4); ecs_eni's records carry more.
ENI_KEYS = ('id', 'type', 'mac', 'device_index', 'vswitch_id', 'cidr', 'gateway', 'primary_ip', 'secondary_ips',
            'ipv6_cidr', 'ipv6_ips')


def attached_enis(results):
    """The ENIs ``ecs_eni`` attached for ``plan['new_enis']``: one summary per loop result.

    ``results``: the loop's results (each with ``item``, the plan entry, and ``network_interface``,
    null in check mode). Returns ``[{node, instance_id, eni_id, name, device_index, mac, vswitch_id,
    ipv4, ipv6, changed, error, record}]``; ``record`` is the ENI in the host-facts form, null unless
    attached.
    """
    out = []
    for result in results or []:
        item = result.get('item') or {}
        record = result.get('network_interface') or {}
        attached = record.get('status') == 'InUse' and record.get('instance_id') == item.get('instance_id')
        out.append({
            'node': item.get('node'), 'instance_id': item.get('instance_id'), 'eni_id': record.get('id') or item.get('eni_id'),
            'name': item.get('name'), 'device_index': record.get('device_index'), 'mac': record.get('mac'),
            'vswitch_id': record.get('vswitch_id') or item.get('vswitch_id'),
            'ipv4': list(record.get('secondary_ips') or []), 'ipv6': list(record.get('ipv6_ips') or []),
            'changed': bool(result.get('changed')),
            'error': '%s (%s): %s' % (item.get('node'), item.get('eni_id') or item.get('name'), result.get('msg')) if result.get('failed') else None,
            'record': dict((k, record.get(k)) for k in ENI_KEYS) if attached else None,
        })
    return out


def with_enis(hosts, attached):
    """``hosts`` (facts dicts) with the ``attached_enis`` records added to their instance's ENIs, in ENI order."""
    by_instance = {}
    for entry in attached or []:
        if entry.get('record'):
            by_instance.setdefault(entry['instance_id'], []).append(entry['record'])
    out = []
    for facts in hosts:
        extra = [r for r in by_instance.get(facts.get('alicloud_instance_id'), [])
                 if r['id'] not in {e.get('id') for e in facts.get('alicloud_enis') or []}]
        if extra:
            facts = dict(facts, alicloud_enis=sorted(list(facts.get('alicloud_enis') or []) + extra, key=eni_order_key))
        out.append(facts)
    return out


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
    for absent in result['absent_nodes']:
        lines.append((absent['node'], '-', '-', '-', '-', '-', '-', '-', '-', 'not in the cluster: %s' % absent['reason']
                      if not absent['in_cluster'] else 'removed: %s' % absent['reason']))
    for stale in result['stale_pools']:
        lines.append((stale['node'] or '?', stale['interface'] or '?', 'v%s' % (stale['family'] or '?'), '-', str(stale['in_pool']),
                      str(stale['allocated']), '-', '-', '-', 'stale pool %s: %s (%s)' % (stale['pool'], stale['action'], stale['reason'])))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return [('  '.join(cell.ljust(width) for cell, width in zip(line, widths)) + '  ' + line[-1]).rstrip() for line in lines]


def plan_lines(plan):
    """What the top-up plan holds back or does about full ENIs, one line each, for the terminal."""
    lines = list(plan['limited'])
    for entry in plan['full']:
        lines.append('%s %s IPv%d: ENI %s is full (%d more wanted): %s' % (
            entry['node'], entry['interface'], entry['family'], entry['eni_id'], entry['missing'], entry['action']))
    return lines


def _text(value):
    return '?' if value is None else str(value)
