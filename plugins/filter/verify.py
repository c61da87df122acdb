# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters exposing the pure connectivity-proof logic to the underlay_verify role (docs: verify_*.yml).

The report itself is built and written by the verify_report action plugin."""

from __future__ import annotations

import functools

from ansible.errors import AnsibleFilterError

from ansible_collections.underlay.alicloud.plugins.module_utils import verify


def _filter_errors(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except verify.VerifyError as exc:
            raise AnsibleFilterError('%s: %s' % (func.__name__, exc)) from None
    return wrapper


@_filter_errors
def verify_nics(pools, prefix='ipvlan-'):
    return verify.nics_from_pools(pools or [], prefix)


@_filter_errors
def verify_plan(pods, nodes, services=None, options=None):
    return verify.build_plan(pods or [], nodes or [], services or [], options or {})


@_filter_errors
def verify_lb_targets(services, names):
    return verify.loadbalancer_targets(services or [], names or [])


@_filter_errors
def verify_lb_results(targets, probes):
    return verify.loadbalancer_results(targets or [], probes or [])


class FilterModule:
    """Connectivity-proof filters."""

    def filters(self):
        return {f.__name__: f for f in (verify_nics, verify_plan, verify_lb_targets, verify_lb_results)}
