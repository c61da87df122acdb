# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible_collections.underlay.alicloud.plugins.module_utils.pod_status import pod_problems


def pod(name, node='worker', phase='Pending', init=(), containers=(), conditions=()):
    return {'metadata': {'name': name, 'namespace': 'kube-system'}, 'spec': {'nodeName': node} if node else {},
            'status': {'phase': phase, 'initContainerStatuses': list(init), 'containerStatuses': list(containers),
                       'conditions': list(conditions)}}


def waiting(name, reason, message='', last=None):
    status = {'name': name, 'ready': False, 'state': {'waiting': {'reason': reason, 'message': message}}}
    if last:
        status['lastState'] = {'terminated': last}
    return status


def test_ready_pods_give_no_line():
    ready = pod('ok', phase='Running', containers=[{'name': 'c', 'ready': True, 'state': {'running': {}}}])
    assert pod_problems([ready]) == []


def test_image_pull_back_off_names_pod_node_container_and_message():
    lines = pod_problems([pod('ccm-x', containers=[waiting('ccm', 'ImagePullBackOff', 'Back-off pulling image "r/ccm:v2"')])])
    assert lines == ['pod kube-system/ccm-x on worker: container ccm ImagePullBackOff (Back-off pulling image "r/ccm:v2")']


def test_crash_loop_gives_the_last_exit_and_termination_message():
    last = {'exitCode': 1, 'message': 'no SLB endpoint'}
    lines = pod_problems([pod('ccm-y', phase='Running', containers=[waiting('ccm', 'CrashLoopBackOff', 'back-off 10s', last)])])
    assert lines == ['pod kube-system/ccm-y on worker: container ccm CrashLoopBackOff (last exit 1: no SLB endpoint)']


def test_init_container_first_and_completed_init_containers_skipped():
    done = {'name': 'install', 'ready': True, 'state': {'terminated': {'reason': 'Completed', 'exitCode': 0}}}
    lines = pod_problems([pod('agent', init=[done, waiting('multus', 'ErrImageNeverPull')],
                              containers=[waiting('agent', 'PodInitializing')])])
    assert lines == ['pod kube-system/agent on worker: container multus ErrImageNeverPull']


def test_unschedulable_pod_names_the_scheduler_message_and_the_newest_warning():
    unscheduled = pod('ccm-z', node=None, conditions=[{'type': 'PodScheduled', 'status': 'False', 'reason': 'Unschedulable',
                                                       'message': '0/3 nodes are available: 3 node(s) didn\'t match selector'}])
    events = [{'involvedObject': {'name': 'ccm-z'}, 'type': 'Warning', 'reason': 'FailedScheduling', 'message': 'old',
               'lastTimestamp': '2026-01-01T00:00:00Z'},
              {'involvedObject': {'name': 'ccm-z'}, 'type': 'Warning', 'reason': 'FailedScheduling', 'message': 'new',
               'lastTimestamp': '2026-01-01T00:01:00Z'},
              {'involvedObject': {'name': 'other'}, 'type': 'Warning', 'reason': 'X', 'message': 'not mine'}]
    assert pod_problems([unscheduled], events) == [
        "pod kube-system/ccm-z on no node: Unschedulable (0/3 nodes are available: 3 node(s) didn't match selector); "
        "last warning FailedScheduling: new"]


def test_failing_readiness_and_long_messages_are_cut():
    running = {'name': 'c', 'ready': False, 'state': {'running': {}}}
    assert pod_problems([pod('p', phase='Running', containers=[running])]) == [
        'pod kube-system/p on worker: container c NotReady (running, readiness probe failing)']
    line = pod_problems([pod('q', containers=[waiting('c', 'ErrImagePull', 'x' * 1000)])])[0]
    assert line.endswith('...)') and len(line) < 320


def test_pods_are_sorted_and_pending_without_status_is_named():
    lines = pod_problems([pod('b'), pod('a')])
    assert lines == ['pod kube-system/a on worker: Pending', 'pod kube-system/b on worker: Pending']
