# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters exposing the pure pool planner and render-mode helpers to roles and templates."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.underlay.alicloud.plugins.module_utils import iprange, planner, pod_status

# Only these host variables feed the planner; reading just them keeps hostvars lazy and fast.
_FACT_KEYS = (
    'inventory_hostname', 'alicloud_hostname', 'alicloud_instance_id', 'alicloud_enis',
    planner.NODE_NAME_VAR, planner.INTERFACE_MAP_VAR, planner.DISCOVERED_INTERFACES_VAR,
)
display = Display()
KUSTOMIZATION_NAMES = ('kustomization.yaml', 'kustomization.yml', 'Kustomization')
# Sub-folders of a render dir that hold Helm values, not Kubernetes objects.
NON_RESOURCE_DIRS = ('values', 'helm')


def _host_facts(facts):
    return {key: facts[key] for key in _FACT_KEYS if key in facts}


def pod_problems(pods, events=None):
    """One line per pod that does not run ready (see pod_status.pod_problems)."""
    return pod_status.pod_problems(pods, events or ())


def spiderpool_plan(hosts, options=None):
    """Plan SpiderMultusConfigs and SpiderIPPools from host facts (see planner.plan)."""
    if isinstance(hosts, Mapping):
        hosts = {str(name): _host_facts(facts) if isinstance(facts, Mapping) else facts for name, facts in hosts.items()}
    elif isinstance(hosts, (list, tuple)):
        hosts = [_host_facts(facts) if isinstance(facts, Mapping) else facts for facts in hosts]
    try:
        result = planner.plan(hosts, options)
    except planner.PlanError as exc:
        raise AnsibleFilterError('spiderpool_plan: %s' % exc) from None
    for line in result['warnings']:
        display.warning('spiderpool_plan: %s' % line)
    return result


def spiderpool_ip_ranges(entries):
    """Canonical Spiderpool form of addresses/ranges: sorted, merged, contiguous runs as a-b."""
    try:
        return iprange.canonical(entries)
    except iprange.IPRangeError as exc:
        raise AnsibleFilterError('spiderpool_ip_ranges: %s' % exc) from None


def underlay_kustomization(files, root):
    """A kustomization listing every YAML resource file under ``root``.

    ``files`` are paths (or ``ansible.builtin.find`` results with a ``path`` key). Files named
    like a kustomization and files below a ``values/`` or ``helm/`` folder are left out.
    """
    root = posixpath.normpath(str(root))
    resources = set()
    for entry in files or []:
        path = entry.get('path') if isinstance(entry, Mapping) else entry
        if not path:
            continue
        path = posixpath.normpath(str(path))
        # find returns paths in the form of the searched root (absolute or relative to the cwd).
        rel = posixpath.relpath(path, root) if posixpath.isabs(path) == posixpath.isabs(root) else path
        parts = rel.split('/')
        if rel.startswith('..'):
            raise AnsibleFilterError('underlay_kustomization: %s is not under %s' % (path, root))
        if parts[-1] in KUSTOMIZATION_NAMES or not parts[-1].endswith(('.yaml', '.yml')):
            continue
        if any(part in NON_RESOURCE_DIRS for part in parts[:-1]):
            continue
        resources.add(rel)
    return {
        'apiVersion': 'kustomize.config.k8s.io/v1beta1',
        'kind': 'Kustomization',
        'resources': sorted(resources),
    }


def underlay_render_root(path):
    """The render directory as an absolute path; a relative one is taken from the directory
    ansible-playbook was started in (modules run in the playbook's directory instead)."""
    path = str(path or '')
    return os.path.abspath(os.path.expanduser(path)) if path else ''


class FilterModule:
    """underlay.alicloud filters."""

    def filters(self):
        return {
            'spiderpool_plan': spiderpool_plan,
            'pod_problems': pod_problems,
            'spiderpool_ip_ranges': spiderpool_ip_ranges,
            'underlay_kustomization': underlay_kustomization,
            'underlay_render_root': underlay_render_root,
        }
