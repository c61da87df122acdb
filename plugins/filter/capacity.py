# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the underlay_capacity role: the host variables the module reads, the ENIs it had attached."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.underlay.alicloud.plugins.module_utils.capacity import HOST_KEYS, attached_enis, with_enis


def underlay_capacity_facts(hosts):
    """``[hostvars[h], ...]`` → the same hosts with only the variables of ``HOST_KEYS``."""
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError('underlay_capacity_facts: expected a list of host variables, got %s' % type(hosts).__name__)
    out = []
    for index, facts in enumerate(hosts):
        if not isinstance(facts, Mapping):
            raise AnsibleFilterError('underlay_capacity_facts: entry %d is %s, expected host variables' % (index, type(facts).__name__))
        out.append({key: facts[key] for key in HOST_KEYS if key in facts})
    return out


def underlay_capacity_attached(results):
    """ecs_eni loop results over ``plan.new_enis`` → one summary per new ENI (see capacity.attached_enis)."""
    if not isinstance(results, (list, tuple)) or not all(isinstance(r, Mapping) for r in results):
        raise AnsibleFilterError('underlay_capacity_attached: expected the results list of an ecs_eni loop, got %r' % (results,))
    return attached_enis(results)


def underlay_capacity_with_enis(hosts, attached):
    """Host facts plus the ENIs of ``underlay_capacity_attached`` that are attached, ready for the pool planner."""
    if not isinstance(hosts, (list, tuple)) or not all(isinstance(h, Mapping) for h in hosts):
        raise AnsibleFilterError('underlay_capacity_with_enis: expected a list of host facts, got %s' % type(hosts).__name__)
    return with_enis(hosts, attached)


class FilterModule:
    """underlay.alicloud capacity filters."""

    def filters(self):
        return {'underlay_capacity_facts': underlay_capacity_facts, 'underlay_capacity_attached': underlay_capacity_attached,
                'underlay_capacity_with_enis': underlay_capacity_with_enis}
