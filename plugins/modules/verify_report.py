#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# The work is done by the action plugin of the same name (plugins/action/verify_report.py); this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: verify_report
short_description: Build the underlay connectivity matrix and write it as JSON, Markdown and HTML
version_added: 0.1.0
description:
  - Parses each source pod's probe output (busybox or iputils ping, busybox wget or curl), checks every pod address
    against its node x NIC SpiderIPPool (C(nodeName) and C(multusName); C(ips) minus C(excludeIPs); C(status.allocatedIPs)),
    adds the controller-side LoadBalancer results and builds the matrix (rows source pods, columns destinations).
  - Writes C(report.json), C(report.md) and a self-contained C(report.html) (inline CSS, no scripts, no external
    resources; failing cells show the command and its output) into O(dest) on the controller.
  - The report's C(result) is C(fail) when a check listed in O(required_checks) has a failed probe; the task itself
    does not fail, so the caller can collect diagnostics first.
author:
  - underlay.alicloud maintainers (!UNKNOWN)
options:
  plan:
    description: The probe plan from the P(underlay.alicloud.verify_plan#filter) filter.
    type: dict
    required: true
  exec_results:
    description: The C(pods) returned by M(underlay.alicloud.verify_exec) (or k8s_exec results with C(pod), C(stdout)).
    type: list
    elements: dict
    default: []
  pools:
    description: SpiderIPPool objects, read after the test pods started (their status holds the allocations).
    type: list
    elements: dict
    default: []
  loadbalancers:
    description: Controller-side results from the P(underlay.alicloud.verify_lb_results#filter) filter.
    type: list
    elements: dict
    default: []
  required_checks:
    description: Checks whose failure makes the result C(fail).
    type: list
    elements: str
    choices: [pool, node, pod, ipv6, service, egress, loadbalancer]
    default: [pool, node, pod, ipv6, service, egress, loadbalancer]
  spiderpool_namespace:
    description: Namespace assumed for C(multusName) entries without one.
    type: str
    default: kube-system
  title:
    description: Report title.
    type: str
    default: Underlay connectivity
  generated:
    description: Timestamp shown in the report.
    type: str
    default: ''
  egress_cloud:
    description:
      - The VPC's egress configuration for the diagnosis of the egress probes, as the role reads it with
        M(underlay.alicloud.vswitch_info), M(underlay.alicloud.vpc_nat_gateway_info) (O(underlay.alicloud.vpc_nat_gateway_info#module:snat_entries=true))
        and M(underlay.alicloud.vpc_ipv6_address_info) - keys C(vpc_id), C(vswitches), C(nat_gateways), C(ipv6_addresses) - or
        C(error) with the reason it could not be read.
      - Each egress result then carries C(diagnosis), per pod address whether an SNAT entry covers it (IPv4) or it has
        IPv6 Internet bandwidth (IPv6). Omitted, egress results have no diagnosis.
    type: dict
  dest:
    description: Directory on the controller for the report files; created when missing.
    type: path
    required: true
attributes:
  check_mode:
    support: full
    description: Builds and returns the report but writes no file.
  diff_mode:
    support: none
    description: Nothing to diff.
  platform:
    support: full
    platforms: all
    description: Runs on the controller.
"""

EXAMPLES = r"""
- name: Build and write the report
  underlay.alicloud.verify_report:
    plan: "{{ plan }}"
    exec_results: "{{ probes.pods }}"
    pools: "{{ pools }}"
    dest: /tmp/underlay-verify-report
  register: report

- name: Show the summary
  ansible.builtin.debug:
    msg: "{{ report.summary }}"
"""

RETURN = r"""
report:
  description: The report (also written as report.json).
  returned: always
  type: dict
  contains:
    result:
      description: C(pass) or C(fail).
      type: str
    failed_checks:
      description: Required checks with failures.
      type: list
      elements: str
    checks:
      description: Per check its title, whether it is required and the counts of probes, successes and failures.
      type: dict
    rows:
      description: One row per source pod with its pool check and one cell per destination.
      type: list
      elements: dict
    failures:
      description: Every failed probe with its command and output, egress probes with their C(diagnosis).
      type: list
      elements: dict
summary:
  description: Short lines for the play output.
  returned: always
  type: list
  elements: str
files:
  description: Paths of the report files.
  returned: always
  type: list
  elements: str
"""
