# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters exposing the whole-run checks (module_utils/preflight.py) to the underlay_preflight role."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.underlay.alicloud.plugins.module_utils import node_names, preflight

# Only these host variables are read; the rest of hostvars stays untemplated.
_FACT_KEYS = (node_names.HOSTNAME_VAR, preflight.ENI_STAGE_VAR) + tuple(preflight.NODE_NAME_VARS.values())


def _facts(host_names, hostvars, filter_name):
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError('%s: hostvars must be a mapping, got %s' % (filter_name, type(hostvars).__name__))
    hosts = {}
    for host in host_names or []:
        if host not in hostvars:
            raise AnsibleFilterError('%s: host %s has no host variables' % (filter_name, host))
        facts = hostvars[host]
        hosts[str(host)] = {key: facts[key] for key in _FACT_KEYS if key in facts}
    return hosts


def underlay_preflight(host_names, hostvars, group='k8s_cluster', stages=preflight.STAGES, mode='apply', render_dir='',
                       cluster_cidr=None):
    """``groups[group] | underlay_preflight(hostvars, ...)``: the list of problems of the whole run."""
    return preflight.check_run(_facts(host_names, hostvars, 'underlay_preflight'), group=group, stages=list(stages or []),
                               mode=mode, render_dir=render_dir, cluster_cidr=cluster_cidr)


def underlay_stages(run_tags, skip_tags=None):
    """``ansible_run_tags | underlay_stages(ansible_skip_tags)``: the site.yml stages that run."""
    return preflight.selected_stages(run_tags, skip_tags)


def underlay_cluster_cidr_errors(value):
    """Problems of a cluster CIDR (comma-separated for dual stack); [] when it is valid."""
    return preflight.cluster_cidr_errors(value)


def underlay_unfinished_eni_hosts(host_names, hostvars):
    """Hosts that started the ENI stage of this run and did not finish it."""
    return preflight.unfinished_eni_hosts(_facts(host_names, hostvars, 'underlay_unfinished_eni_hosts'))


class FilterModule:
    """underlay.alicloud filters for the whole-run checks."""

    def filters(self):
        return {
            'underlay_preflight': underlay_preflight,
            'underlay_stages': underlay_stages,
            'underlay_cluster_cidr_errors': underlay_cluster_cidr_errors,
            'underlay_unfinished_eni_hosts': underlay_unfinished_eni_hosts,
        }
