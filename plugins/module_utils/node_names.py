# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes node names of inventory hosts, derived once for every stage (pure, no I/O).

A host's node name is a per-stage override variable, else its ECS HostName, trimmed and
lower-cased as the kubelet does when it registers the Node. The result must be an RFC 1123
subdomain, the form Kubernetes accepts for Node names.
"""

from __future__ import annotations

import re

HOSTNAME_VAR = 'alicloud_hostname'
# RFC 1123 subdomain: dot-separated labels of [a-z0-9-], alphanumeric at both ends, <= 253 in all.
_SUBDOMAIN = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')
MAX_LENGTH = 253


def source(facts, override_var, fallback=None):
    """(variable, raw value) the node name of a host comes from; (None, None) when none is set.

    ``fallback`` (e.g. the inventory hostname) stands in when neither variable is set.
    """
    for var in (override_var, HOSTNAME_VAR):
        value = facts.get(var)
        if value is not None and str(value).strip():
            return var, str(value)
    if fallback:
        return 'inventory_hostname', str(fallback)
    return None, None


def normalise(raw):
    """The node name the kubelet registers for ``raw``: trimmed and lower-cased."""
    return str(raw).strip().lower()


def node_name(facts, override_var, fallback=None):
    """The Kubernetes node name of a host ('' when it has none); see source()."""
    raw = source(facts, override_var, fallback)[1]
    return normalise(raw) if raw is not None else ''


def is_valid(name):
    return len(name) <= MAX_LENGTH and bool(_SUBDOMAIN.match(name))


def invalid_message(host, var, raw):
    """One line for a host whose node name Kubernetes would refuse."""
    return ('host %s: Kubernetes node name %r (from %s) is not a valid RFC 1123 subdomain: expected at most %d '
            "lower-case letters, digits, '-' and '.', starting and ending with a letter or digit; fix the ECS HostName "
            'or set spiderpool_networks_node_name and alicloud_ccm_node_name for the host' % (host, raw, var, MAX_LENGTH))
