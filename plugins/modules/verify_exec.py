#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# The work is done by the action plugin of the same name (plugins/action/verify_exec.py); this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: verify_exec
short_description: Run one command per pod, in parallel, from the controller
version_added: 0.1.0
description:
  - Runs one C(exec) per listed pod through the Kubernetes API (websocket protocol), several at a time, and returns
    each pod's stdout, stderr and exit code. The underlay_verify role uses it to run each source pod's probe script
    once, so the number of exec calls grows with the pods, not with the pod pairs.
  - A pod whose exec fails (pod gone, container not running, timeout) gets an C(error) text; the task itself does not fail.
  - Runs on the controller (action plugin) and needs the C(kubernetes) Python library there.
  - Authentication as for kubernetes.core (C(K8S_AUTH_KUBECONFIG), C(K8S_AUTH_CONTEXT), C(~/.kube/config)), or the options below.
author:
  - underlay.alicloud maintainers (!UNKNOWN)
options:
  namespace:
    description: Namespace of the pods.
    type: str
    required: true
  sources:
    description:
      - One entry per pod, with C(name) and either C(command) (argv list) or C(script) (run as C(sh -c SCRIPT)).
    type: list
    elements: dict
    required: true
  container:
    description: Container to exec in; default the pod's first container.
    type: str
  parallel:
    description: Execs running at the same time.
    type: int
    default: 10
  timeout:
    description: Seconds one exec may take before it is abandoned and reported as an error.
    type: int
    default: 120
  kubeconfig:
    description: Path to a kubeconfig file.
    type: path
  context:
    description: Kubeconfig context to use.
    type: str
attributes:
  check_mode:
    support: full
    description: The commands run in check mode too; they are expected to be read-only probes.
  diff_mode:
    support: none
    description: Nothing to diff.
  platform:
    support: full
    platforms: all
    description: Runs on the controller.
notes:
  - The commands run inside the pods; nothing is changed on the controller, so the task reports C(changed=false).
requirements:
  - kubernetes (Python) on the controller
"""

EXAMPLES = r"""
- name: Run each pod's probe script once
  underlay.alicloud.verify_exec:
    namespace: underlay-verify
    sources:
      - {name: underlay-verify-eth0-abcde, script: "ping -c 1 172.31.199.183"}
    parallel: 20
  register: probes
"""

RETURN = r"""
pods:
  description: One entry per source, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    pod:
      description: Pod name.
      type: str
    stdout:
      description: Standard output of the command.
      type: str
    stderr:
      description: Standard error of the command.
      type: str
    rc:
      description: Exit code; null when the exec did not complete.
      type: int
    error:
      description: Why the exec failed (empty on success).
      type: str
exec_calls:
  description: Number of exec calls made.
  returned: always
  type: int
"""
