# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure planning of Node ``spec.providerID`` values for the Alibaba cloud-controller-manager.

Kubernetes lets ``spec.providerID`` change only from empty to a value, so the plan sorts every
inventory node into: already right, to patch, in conflict (set to something else), or missing
from the cluster. No I/O here: the role feeds in host facts and the Node list it read.
"""

from __future__ import annotations

import re

from ansible_collections.underlay.alicloud.plugins.module_utils import node_names

NODE_NAME_VAR = 'alicloud_ccm_node_name'
# <region-id>.<instance-id>, e.g. cn-hangzhou.i-bp17345hor9abcdefgh (DESIGN.md section 4).
PROVIDER_ID_RE = re.compile(r'^[a-z0-9]+(?:-[a-z0-9]+)+\.i-[a-z0-9]+$')


def host_record(host, facts):
    """The facts of one inventory host that matter for its providerID, as plain strings."""
    def text(key):
        value = facts.get(key)
        return None if value is None or value == '' else str(value)

    node_var, node_raw = node_names.source(facts, NODE_NAME_VAR, host)
    return {
        'host': str(host),
        'node': node_names.normalise(node_raw),
        'node_var': node_var,
        'node_raw': node_raw,
        'provider_id': text('alicloud_provider_id'),
        'region': text('alicloud_region'),
        'instance_id': text('alicloud_instance_id'),
    }


def validate_hosts(hosts):
    """One message per bad host record: missing/malformed/inconsistent providerID, bad or duplicate names."""
    errors = []
    seen_nodes = {}
    seen_ids = {}
    for rec in hosts:
        host, node, wanted = rec['host'], rec['node'], rec['provider_id']
        if not node_names.is_valid(node):
            errors.append(node_names.invalid_message(host, rec.get('node_var', NODE_NAME_VAR), rec.get('node_raw', node)))
        if wanted is None:
            errors.append('host %s: alicloud_provider_id is not set; expected <region-id>.<instance-id> '
                          'such as cn-hangzhou.i-bp1example (from the underlay.alicloud.ecs inventory)' % host)
            continue
        if not PROVIDER_ID_RE.match(wanted):
            errors.append('host %s: alicloud_provider_id %r is malformed; expected <region-id>.<instance-id> '
                          'such as cn-hangzhou.i-bp1example' % (host, wanted))
            continue
        if rec.get('region') and rec.get('instance_id'):
            expected = '%s.%s' % (rec['region'], rec['instance_id'])
            if wanted != expected:
                errors.append('host %s: alicloud_provider_id %r does not match alicloud_region.alicloud_instance_id %r'
                              % (host, wanted, expected))
        if node in seen_nodes:
            errors.append('hosts %s and %s both map to Kubernetes node %s (set alicloud_ccm_node_name)'
                          % (seen_nodes[node], host, node))
        seen_nodes.setdefault(node, host)
        if wanted in seen_ids:
            errors.append('hosts %s and %s both have providerID %s' % (seen_ids[wanted], host, wanted))
        seen_ids.setdefault(wanted, host)
    return errors


def plan(hosts, nodes):
    """Sort inventory hosts against the cluster's Node objects.

    ``hosts``: host records (see ``host_record``); ``nodes``: Node objects as dicts (``k8s_info``).
    Returns a dict with ``errors`` (bad inventory data: nothing may be changed), ``patch``,
    ``unchanged``, ``conflicts``, ``missing`` (lists of dicts naming host, node and values),
    ``unmanaged`` (cluster nodes without providerID that no inventory host describes) and
    ``patches`` (merge-patch bodies for the nodes to patch).
    """
    result = {'errors': validate_hosts(hosts), 'patch': [], 'unchanged': [], 'conflicts': [],
              'missing': [], 'unmanaged': [], 'patches': []}
    if result['errors']:
        return result
    current = {}
    for node in nodes or []:
        name = (node.get('metadata') or {}).get('name')
        if name:
            current[name] = (node.get('spec') or {}).get('providerID') or ''
    wanted_nodes = set()
    for rec in hosts:
        entry = {'host': rec['host'], 'node': rec['node'], 'provider_id': rec['provider_id']}
        wanted_nodes.add(rec['node'])
        if rec['node'] not in current:
            result['missing'].append(dict(entry, message=missing_message(entry)))
        elif current[rec['node']] == rec['provider_id']:
            result['unchanged'].append(entry)
        elif current[rec['node']] == '':
            result['patch'].append(entry)
            result['patches'].append({'apiVersion': 'v1', 'kind': 'Node', 'metadata': {'name': rec['node']},
                                      'spec': {'providerID': rec['provider_id']}})
        else:
            conflict = dict(entry, current=current[rec['node']])
            conflict['message'] = conflict_message(conflict)
            result['conflicts'].append(conflict)
    result['unmanaged'] = sorted(name for name, value in current.items() if not value and name not in wanted_nodes)
    return result


def conflict_message(conflict):
    """One line for a node whose providerID Kubernetes will not let us change."""
    return ('node %s (host %s) already has providerID %s, wanted %s: Kubernetes does not allow changing '
            'spec.providerID; fix the inventory, or delete the Node object and let its kubelet re-register'
            % (conflict['node'], conflict['host'], conflict['current'], conflict['provider_id']))


def missing_message(missing):
    """One line for an inventory host that has no Node in the cluster."""
    return ('host %s: no Node named %s in the cluster (wanted providerID %s); join the node, or set '
            'alicloud_ccm_node_name for the host' % (missing['host'], missing['node'], missing['provider_id']))
