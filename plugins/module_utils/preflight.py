# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole-run input checks of playbooks/site.yml (pure, no I/O).

Everything a later stage would refuse is checked here, before the first stage changes anything:
the run's mode, the inventory (empty, node names), and inputs of the stages that run late (the
CCM's cluster CIDR). Each problem is one line naming the bad value and what is expected.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.underlay.alicloud.plugins.module_utils import node_names

STAGES = ('enis', 'cni', 'spiderpool', 'networks', 'ccm', 'egress', 'verify')
MODES = ('apply', 'render')
# Stage -> override variable of the node name that stage uses (None: the stage names no Node).
NODE_NAME_VARS = {'networks': 'spiderpool_networks_node_name', 'ccm': 'alicloud_ccm_node_name'}
# Set by playbooks/alicloud_enis.yml on each host: 'started' until the host finished the ENI stage.
ENI_STAGE_VAR = 'underlay_enis_stage'
CIDR_VAR = 'alicloud_ccm_cluster_cidr'


def selected_stages(run_tags=None, skip_tags=None):
    """The stages of site.yml that run with these --tags / --skip-tags (ansible_run_tags, ansible_skip_tags)."""
    run_tags = set(run_tags or ['all'])
    skip_tags = set(skip_tags or [])
    if run_tags & {'all', 'tagged'}:
        chosen = set(STAGES)
    else:
        chosen = run_tags & set(STAGES)
    return [stage for stage in STAGES if stage in chosen and stage not in skip_tags]


def mode_errors(mode, render_dir):
    if mode not in MODES:
        return ['underlay_mode %r is not a mode: expected apply or render' % (mode,)]
    if mode == 'render' and not str(render_dir or '').strip():
        return ['underlay_mode is render but underlay_render_dir is empty: expected the directory to write the files to']
    return []


def cluster_cidr_errors(value):
    """Problems of the CCM's pod CIDR: one network in CIDR notation per family, comma-separated."""
    cidrs = [part.strip() for part in str(value if value is not None else '').split(',') if part.strip()]
    if not cidrs:
        return ["%s is not set: expected the cluster's pod CIDR such as 10.244.0.0/16 "
                '(find it with: kubectl cluster-info dump | grep -m1 cluster-cidr)' % CIDR_VAR]
    errors = []
    families = {}
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr) if '/' in cidr else None
        except ValueError:
            network = None
        if network is None:
            errors.append('%s: %s is not a network in CIDR notation; expected e.g. 10.244.0.0/16 (no host bits set)' % (CIDR_VAR, cidr))
        elif network.version in families:
            errors.append('%s: %s and %s are both IPv%d; expected at most one IPv4 and one IPv6 CIDR'
                          % (CIDR_VAR, families[network.version], cidr, network.version))
        else:
            families[network.version] = cidr
    return errors


def node_name_errors(hosts, stages):
    """Bad, missing and shared Kubernetes node names of ``hosts`` ({inventory_hostname: facts})."""
    errors = []
    for stage in stages:
        override = NODE_NAME_VARS.get(stage)
        if override is None:
            continue
        owners = {}
        for host, facts in hosts.items():
            # The pool planner needs a name; the CCM falls back to the inventory hostname.
            var, raw = node_names.source(facts, override, host if stage == 'ccm' else None)
            if raw is None:
                errors.append('host %s has no Kubernetes node name: neither %s nor alicloud_hostname is set' % (host, override))
                continue
            name = node_names.normalise(raw)
            if not node_names.is_valid(name):
                errors.append(node_names.invalid_message(host, var, raw))
            elif name in owners:
                errors.append('hosts %s and %s have the same Kubernetes node name %s (set %s for one of them)'
                              % (owners[name], host, name, override))
            owners.setdefault(name, host)
    # A name used by two stages is reported once.
    return list(dict.fromkeys(errors))


def check_run(hosts, group='k8s_cluster', stages=STAGES, mode='apply', render_dir='', cluster_cidr=None):
    """Every problem of the whole run, before any stage starts; [] when it may go ahead.

    ``hosts``: {inventory_hostname: host variables} of the inventory group the stages target.
    """
    unknown = [stage for stage in stages if stage not in STAGES]
    if unknown:
        return ['unknown stage(s) %s: expected some of %s' % (', '.join(map(str, unknown)), ', '.join(STAGES))]
    errors = mode_errors(mode, render_dir)
    if not hosts:
        errors.append('inventory group %s has no hosts: nothing to set up. Check the inventory source (-i), its filters and '
                      'credentials (ansible-inventory -i SOURCE --graph lists what it finds)' % group)
    errors.extend(node_name_errors(hosts, stages))
    if 'ccm' in stages:
        errors.extend(cluster_cidr_errors(cluster_cidr))
    return errors


def unfinished_eni_hosts(hosts):
    """Hosts that started the ENI stage of this run but did not finish it; their ENI facts are stale."""
    return [host for host, facts in hosts.items() if facts.get(ENI_STAGE_VAR) == 'started']
