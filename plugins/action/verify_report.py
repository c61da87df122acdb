# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin verify_report: build the connectivity matrix and write it on the controller (docs: modules/verify_report.py)."""

from __future__ import annotations

import json
import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.action import ActionBase

from ansible_collections.underlay.alicloud.plugins.module_utils import verify

ARGUMENT_SPEC = {
    'plan': {'type': 'dict', 'required': True},
    'exec_results': {'type': 'list', 'elements': 'dict', 'default': []},
    'pools': {'type': 'list', 'elements': 'dict', 'default': []},
    'loadbalancers': {'type': 'list', 'elements': 'dict', 'default': []},
    'required_checks': {'type': 'list', 'elements': 'str', 'default': list(verify.CHECKS)},
    'spiderpool_namespace': {'type': 'str', 'default': 'kube-system'},
    'title': {'type': 'str', 'default': 'Underlay connectivity'},
    'generated': {'type': 'str', 'default': ''},
    'egress_cloud': {'type': 'dict'},
    'dest': {'type': 'path', 'required': True},
}


def _write(path, text):
    """Write when different; True if the file changed."""
    data = to_bytes(text)
    try:
        with open(path, 'rb') as handle:
            if handle.read() == data:
                return False
    except OSError:
        pass
    with open(path, 'wb') as handle:
        handle.write(data)
    return True


class ActionModule(ActionBase):
    """Report files are controller artifacts (like fetch's dest), so they are written here, not on a target."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            report = verify.build_report(args['plan'], args['exec_results'], args['pools'], args['loadbalancers'], {
                'required': args['required_checks'], 'spiderpool_namespace': args['spiderpool_namespace'],
                'generated': args['generated'], 'title': args['title'], 'egress_cloud': args['egress_cloud']})
        except (verify.VerifyError, KeyError, TypeError) as exc:
            raise AnsibleActionFail('verify_report: cannot build the report: %s' % exc) from None
        files = {'report.json': json.dumps(report, indent=1, sort_keys=True) + '\n',
                 'report.md': verify.render_markdown(report), 'report.html': verify.render_html(report)}
        dest = args['dest']
        changed = False
        if not self._task.check_mode:
            try:
                os.makedirs(dest, exist_ok=True)
                for name, text in files.items():
                    changed = _write(os.path.join(dest, name), text) or changed
            except OSError as exc:
                raise AnsibleActionFail('verify_report: cannot write the report to %s: %s' % (dest, exc)) from None
        else:
            changed = True
        result.update(changed=changed, report=report, summary=verify.summary_lines(report),
                      files=[os.path.join(dest, name) for name in files])
        return result
