# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Why pods do not run, in one line each: what a role says when a workload never becomes ready."""

from __future__ import annotations

MAX_MESSAGE = 240


def _short(text):
    text = ' '.join(str(text or '').split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 3] + '...'


def _container_reason(status):
    """(reason, detail) of a container that is not running ready, else None."""
    state = status.get('state') or {}
    if 'waiting' in state:
        waiting = state['waiting'] or {}
        last = (status.get('lastState') or {}).get('terminated') or {}
        detail = waiting.get('message') or ''
        if last:
            detail = 'last exit %s%s' % (last.get('exitCode'), ': ' + last['message'] if last.get('message') else '')
        return waiting.get('reason') or 'Waiting', detail
    if 'terminated' in state:
        terminated = state['terminated'] or {}
        detail = 'exit %s %s' % (terminated.get('exitCode'), terminated.get('message') or '')
        return terminated.get('reason') or 'Terminated', detail
    if not status.get('ready'):
        return 'NotReady', 'running, readiness probe failing' if 'running' in state else ''
    return None


def _latest_warning(events, pod):
    """The newest Warning event about POD (events: Event objects of its namespace)."""
    name = pod['metadata']['name']
    mine = [e for e in events or () if (e.get('involvedObject') or {}).get('name') == name and e.get('type') == 'Warning']
    if not mine:
        return None
    newest = max(mine, key=lambda e: e.get('lastTimestamp') or e.get('eventTime') or '')
    return '%s: %s' % (newest.get('reason'), newest.get('message'))


def pod_problems(pods, events=()):
    """One line per pod that does not run ready: namespace/name, node, reason and detail.

    Init containers come first (a pod waits on them), then containers; a pod without a node names the
    scheduler's condition. Ready pods give no line.
    """
    lines = []
    for pod in sorted(pods or (), key=lambda p: (p['metadata'].get('namespace', ''), p['metadata']['name'])):
        meta, spec, status = pod['metadata'], pod.get('spec') or {}, pod.get('status') or {}
        where = 'pod %s/%s on %s' % (meta.get('namespace', ''), meta['name'], spec.get('nodeName') or 'no node')
        problem = None
        for kind in ('initContainerStatuses', 'containerStatuses'):
            for container in status.get(kind) or ():
                found = _container_reason(container)
                if found and not (kind == 'initContainerStatuses' and found[0] == 'Completed'):
                    problem = (container['name'], found)
                    break
            if problem:
                break
        if problem:
            name, (reason, detail) = problem
            line = '%s: container %s %s' % (where, name, reason)
            if detail:
                line += ' (%s)' % _short(detail)
        elif status.get('phase') == 'Running' and all(c.get('ready') for c in status.get('containerStatuses') or ()):
            continue
        else:
            conditions = {c.get('type'): c for c in status.get('conditions') or ()}
            scheduled = conditions.get('PodScheduled') or {}
            if scheduled.get('status') == 'False':
                line = '%s: %s (%s)' % (where, scheduled.get('reason') or 'Unschedulable', _short(scheduled.get('message')))
            else:
                line = '%s: %s' % (where, status.get('phase') or 'Pending')
        warning = _latest_warning(events, pod)
        if warning:
            line += '; last warning %s' % _short(warning)
        lines.append(line)
    return lines
