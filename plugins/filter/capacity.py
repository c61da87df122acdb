# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter feeding the underlay_capacity module only the host variables it reads."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.underlay.alicloud.plugins.module_utils.capacity import HOST_KEYS


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


class FilterModule:
    """underlay.alicloud capacity filters."""

    def filters(self):
        return {'underlay_capacity_facts': underlay_capacity_facts}
