# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the alicloud_ccm role: the providerID plan from inventory host facts."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.underlay.alicloud.plugins.module_utils import ccm_nodes


def ccm_node_plan(host_names, hostvars, nodes):
    """Plan Node providerIDs: ``groups[...] | ccm_node_plan(hostvars, node_resources)``."""
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError('ccm_node_plan: hostvars must be a mapping, got %s' % type(hostvars).__name__)
    records = []
    for host in host_names or []:
        if host not in hostvars:
            raise AnsibleFilterError('ccm_node_plan: host %s has no host variables' % host)
        records.append(ccm_nodes.host_record(host, hostvars[host]))
    return ccm_nodes.plan(records, nodes)


class FilterModule:
    """underlay.alicloud filters for the cloud-controller-manager role."""

    def filters(self):
        return {'ccm_node_plan': ccm_node_plan}
