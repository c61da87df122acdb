# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin verify_exec: one exec per source pod, run in parallel from the controller (docs: modules/verify_exec.py)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

try:
    import yaml
    from kubernetes import client as k8s_client
    from kubernetes.stream import stream
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
    HAS_KUBERNETES = True
    IMPORT_ERROR = None
except ImportError as exc:  # the controller needs the kubernetes client, as for the kubernetes.core lookups
    HAS_KUBERNETES = False
    IMPORT_ERROR = exc

ARGUMENT_SPEC = {
    'namespace': {'type': 'str', 'required': True},
    'sources': {'type': 'list', 'elements': 'dict', 'required': True},
    'container': {'type': 'str'},
    'parallel': {'type': 'int', 'default': 10},
    'timeout': {'type': 'int', 'default': 120},
    'kubeconfig': {'type': 'path'},
    'context': {'type': 'str'},
}


def exec_once(configuration, namespace, pod, command, container, timeout):
    """One exec over the websocket protocol -> {'pod', 'stdout', 'stderr', 'rc', 'error'}.

    Each call gets its own ApiClient: kubernetes.stream swaps ApiClient.request while it runs.
    """
    result = {'pod': pod, 'stdout': '', 'stderr': '', 'rc': None, 'error': ''}
    kwargs = {'container': container} if container else {}
    try:
        api = k8s_client.CoreV1Api(k8s_client.ApiClient(configuration))
        resp = stream(api.connect_get_namespaced_pod_exec, pod, namespace, command=command, stdout=True, stderr=True,
                      stdin=False, tty=False, _preload_content=False, **kwargs)
        stdout, stderr, deadline = [], [], time.monotonic() + timeout
        while resp.is_open() and time.monotonic() < deadline:
            resp.update(timeout=1)
            if resp.peek_stdout():
                stdout.append(resp.read_stdout())
            if resp.peek_stderr():
                stderr.append(resp.read_stderr())
        result.update(stdout=''.join(stdout), stderr=''.join(stderr))
        if resp.is_open():
            resp.close()
            result['error'] = 'exec did not finish within %d s' % timeout
            return result
        status = yaml.safe_load(resp.read_channel(3) or '{}') or {}
        if status.get('status') == 'Success':
            result['rc'] = 0
        else:
            causes = (status.get('details') or {}).get('causes') or [{}]
            result['rc'] = int(causes[0].get('message', -1)) if str(causes[0].get('message', '')).lstrip('-').isdigit() else -1
    except Exception as exc:  # pylint: disable=broad-exception-caught  # any failure is a finding for that pod only
        result['error'] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return result


class ActionModule(ActionBase):
    """Run one command per pod (here: each source pod's probe script) with bounded parallelism."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if not HAS_KUBERNETES:
            raise AnsibleActionFail('verify_exec needs the kubernetes Python library on the controller: %s' % IMPORT_ERROR)
        if args['parallel'] < 1 or args['timeout'] < 1:
            raise AnsibleActionFail('verify_exec: parallel and timeout must be >= 1, got %s and %s' % (args['parallel'], args['timeout']))
        bad = [s for s in args['sources'] if not s.get('name') or not (s.get('command') or s.get('script'))]
        if bad:
            raise AnsibleActionFail('verify_exec: each source needs a name and a command (list) or script (str); got %r' % (bad[0],))
        auth = {k: args[k] for k in ('kubeconfig', 'context') if args[k]}
        configuration = get_api_client(**auth).configuration

        def one(source):
            command = source.get('command') or ['sh', '-c', source['script']]
            return exec_once(configuration, args['namespace'], source['name'], command, args['container'], args['timeout'])

        with ThreadPoolExecutor(max_workers=min(args['parallel'], max(len(args['sources']), 1))) as pool:
            pods = list(pool.map(one, args['sources']))
        result.update(changed=False, pods=pods, exec_calls=len(pods))
        return result
