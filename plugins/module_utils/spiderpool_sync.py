# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconciliation of planned Spiderpool objects with what the cluster holds (no I/O of its own).

Given the desired SpiderMultusConfigs/SpiderIPPools and the current ones (as listed from the API),
decide creates, updates, placeholder replacements, re-creations and prunes. Comparison is
semantic: address sets are compared as sets (the webhook rewrites ``ips`` into merged ranges),
server-filled defaults count as absent. Safety rules enforced here, before any write:
an allocated address is never removed from a pool, a pool holding allocated addresses is never
deleted, and addresses never overlap another pool. ``run_phases`` makes the writes through a
caller's function, in parallel within a phase, and reports failures in object order.
"""

from __future__ import annotations

import copy
import json
import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.underlay.alicloud.plugins.module_utils import iprange

GROUP = 'spiderpool.spidernet.io'
VERSION = 'v2beta1'
API_VERSION = '%s/%s' % (GROUP, VERSION)
POOL = 'SpiderIPPool'
SMC = 'SpiderMultusConfig'
PLURALS = {POOL: 'spiderippools', SMC: 'spidermultusconfigs'}

# CRD/webhook defaults: a field holding its default is the same as an absent field.
_DEFAULTS = {
    SMC: {'enableCoordinator': True, 'cniType': 'custom'},
    POOL: {},
}
# Set by the server or by operators, kept on update unless the plan sets them:
# SMC ``coordinator`` (webhook fills per-network defaults), pool ``disable`` (drain switch) and
# ``excludeIPs`` (operator exclusions).
PRESERVED = {SMC: ('coordinator',), POOL: ('disable', 'excludeIPs')}
_IP_SET_FIELDS = ('ips', 'excludeIPs')


class SyncError(ValueError):
    """Applying the plan would be unsafe or impossible; nothing is changed."""


class WriteError(Exception):
    """One write failed. ``fatal`` when the cause is not the object (API unreachable, failing or refusing
    us): no other write can be expected to pass, so none is started after it."""

    def __init__(self, message, fatal=False):
        super().__init__(message)
        self.fatal = fatal


def _empty(value):
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return len(value) == 0
    return value in (None, '', 0, False)


def _normalize(value):
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in sorted(value.items()) if not _empty(v)}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


def normalize_spec(kind, spec, ignore=()):
    """Comparable form of a spec: defaults and empty values dropped, address sets canonical."""
    out = {}
    for key, value in (spec or {}).items():
        if key in ignore:
            continue
        if key in _DEFAULTS.get(kind, {}):
            if value != _DEFAULTS[kind][key]:
                out[key] = value
            continue
        if kind == POOL and key in _IP_SET_FIELDS:
            value = iprange.canonical(value or [])
        value = _normalize(value)
        if not _empty(value):
            out[key] = value
    return out


def allocated_ips(pool):
    """``{ip: pod}`` from ``status.allocatedIPs`` (a JSON string map ip -> {pod, podUid})."""
    raw = (pool.get('status') or {}).get('allocatedIPs')
    if not raw:
        return {}
    data = json.loads(raw) if isinstance(raw, str) else raw
    return {ip: (info or {}).get('pod') or 'unknown pod' for ip, info in (data or {}).items()}


def usable(spec):
    """Addresses a pool hands out: ``ips`` minus ``excludeIPs``."""
    return iprange.subtract(iprange.parse(spec.get('ips') or []), iprange.parse(spec.get('excludeIPs') or []))


def _holders(ips_to_pods):
    return ', '.join('%s (pod %s)' % (ip, pod) for ip, pod in sorted(ips_to_pods.items(), key=lambda i: iprange.parse([i[0]])))


def is_placeholder(smc):
    """The chart's default-network SMC: ``cniType: custom`` (or a ``customCNI`` config) (#2700)."""
    spec = smc.get('spec') or {}
    return spec.get('cniType', 'custom') == 'custom' or 'customCNI' in spec


def ref(obj):
    meta = obj['metadata']
    return '%s %s' % (obj['kind'], '%s/%s' % (meta['namespace'], meta['name']) if meta.get('namespace') else meta['name'])


def _key(obj):
    return (obj['kind'], obj['metadata'].get('namespace') or '', obj['metadata']['name'])


def _selector_match(obj, selector):
    labels = obj['metadata'].get('labels') or {}
    return all(labels.get(k) == v for k, v in selector.items())


def _metadata_drift(desired, current):
    for field in ('labels', 'annotations'):
        have = current['metadata'].get(field) or {}
        if any(have.get(k) != v for k, v in (desired['metadata'].get(field) or {}).items()):
            return True
    return False


def update_body(desired, current, keep_preserved=True):
    """Full replacement (PUT) body: planned spec + preserved fields; current metadata kept, ours merged in."""
    kind = desired['kind']
    meta = dict(current['metadata'])
    for field in ('labels', 'annotations'):
        merged = dict(meta.get(field) or {})
        merged.update(desired['metadata'].get(field) or {})
        if merged:
            meta[field] = merged
    for volatile in ('managedFields',):
        meta.pop(volatile, None)
    spec = dict(desired['spec'])
    if keep_preserved:
        for key in PRESERVED[kind]:
            if key in (current.get('spec') or {}) and key not in spec:
                spec[key] = current['spec'][key]
    return {'apiVersion': desired['apiVersion'], 'kind': kind, 'metadata': meta, 'spec': spec}


def _view(obj, kind):
    """What the diff shows: our labels and the normalised spec."""
    if obj is None:
        return {}
    return {'metadata': {'labels': dict(sorted((obj['metadata'].get('labels') or {}).items()))},
            'spec': normalize_spec(kind, obj.get('spec'))}


def _change(action, desired, current, body=None, **extra):
    obj = desired if desired is not None else current
    change = {'action': action, 'kind': obj['kind'], 'name': obj['metadata']['name'], 'body': body,
              'before': _view(current, obj['kind']), 'after': _view(body if body is not None else None, obj['kind'])}
    if obj['metadata'].get('namespace'):
        change['namespace'] = obj['metadata']['namespace']
    change.update(extra)
    return change


def validate_desired(desired):
    """Refuse objects the module does not manage, before anything is read or written."""
    seen = set()
    for index, obj in enumerate(desired):
        meta = (obj.get('metadata') or {}) if isinstance(obj, dict) else {}
        where = 'objects[%d]%s' % (index, ' (%s)' % meta['name'] if meta.get('name') else '')
        if not isinstance(obj, dict) or obj.get('kind') not in PLURALS or obj.get('apiVersion') != API_VERSION:
            got = obj.get('kind') if isinstance(obj, dict) else obj
            raise SyncError('%s: objects may only be %s %s, got %r' % (where, API_VERSION, ' or '.join(sorted(PLURALS)), got))
        if not meta.get('name') or not isinstance(obj.get('spec'), dict):
            raise SyncError('%s: %s without metadata.name or spec' % (where, obj['kind']))
        if (obj['kind'] == SMC) != bool(meta.get('namespace')):
            raise SyncError('%s %s: a SpiderMultusConfig needs metadata.namespace, a SpiderIPPool must not have one'
                            % (obj['kind'], meta['name']))
        if _key(obj) in seen:
            raise SyncError('%s is listed twice' % ref(obj))
        seen.add(_key(obj))


def _pool_change(desired, current, problems):
    """Change for one planned pool against its current version (or None when equal)."""
    name = desired['metadata']['name']
    if current is None:
        return _change('create', desired, None, desired)
    if current['metadata'].get('deletionTimestamp'):
        problems.append('SpiderIPPool %s is being deleted (its addresses are still being released); run again once it is gone' % name)
        return None
    held = allocated_ips(current)
    cur_spec, new_spec = current.get('spec') or {}, desired['spec']
    if (cur_spec.get('subnet'), cur_spec.get('ipVersion', new_spec.get('ipVersion'))) != (new_spec.get('subnet'), new_spec.get('ipVersion')):
        if held:
            problems.append('SpiderIPPool %s must move from subnet %s to %s (subnet is immutable) but holds %s; move those pods first'
                            % (name, cur_spec.get('subnet'), new_spec.get('subnet'), _holders(held)))
            return None
        return _change('recreate', desired, current, desired)
    body = update_body(desired, current)
    lost = {ip: pod for ip, pod in held.items() if not iprange.contains(usable(body['spec']), ip)}
    if lost:
        problems.append('refusing to remove %s from SpiderIPPool %s: in use; move or delete the pod first' % (_holders(lost), name))
        return None
    ignore = [k for k in PRESERVED[POOL] if k not in new_spec]
    if normalize_spec(POOL, cur_spec, ignore) == normalize_spec(POOL, new_spec, ignore) and not _metadata_drift(desired, current):
        return None
    before, after = iprange.parse(cur_spec.get('ips') or []), iprange.parse(new_spec.get('ips') or [])
    return _change('update', desired, current, body,
                   added=iprange.format_ranges(iprange.subtract(after, before)),
                   removed=iprange.format_ranges(iprange.subtract(before, after)))


def _smc_change(desired, current, problems, replace_placeholder):
    if current is None:
        return _change('create', desired, None, desired)
    if is_placeholder(current):
        if not replace_placeholder:
            problems.append('%s is the chart\'s cniType custom placeholder; a merge onto it is refused by the Spiderpool webhook (#2700): '
                            'allow replacing it or delete it first' % ref(current))
            return None
        return _change('replace', desired, current, update_body(desired, current, keep_preserved=False))
    ignore = [k for k in PRESERVED[SMC] if k not in desired['spec']]
    if normalize_spec(SMC, current.get('spec'), ignore) == normalize_spec(SMC, desired['spec'], ignore) \
            and not _metadata_drift(desired, current):
        return None
    return _change('update', desired, current, update_body(desired, current))


def plan_sync(desired, current_smcs, current_pools, owner_selector, prune=True, replace_placeholder=True):
    """Decide the writes that bring the cluster to ``desired``.

    ``current_*`` are every SpiderMultusConfig and SpiderIPPool the API lists; ``owner_selector``
    is the label set marking objects this collection owns (the only ones ever pruned). Returns
    ``{'changes': [...], 'kept': [...], 'unchanged': n}``; each change has ``action`` (create,
    update, replace, recreate, delete), ``kind``, ``name``, ``namespace`` (SMCs), ``body``
    (for writes), ``before``/``after`` views for the diff. Raises SyncError naming every refusal.
    """
    validate_desired(desired)
    wanted = {_key(o): o for o in desired}
    smcs = {_key(o): o for o in current_smcs}
    pools = {_key(o): o for o in current_pools}
    problems, changes, kept = [], [], []
    unchanged = 0
    for key, obj in sorted(wanted.items()):
        if obj['kind'] == SMC:
            change = _smc_change(obj, smcs.get(key), problems, replace_placeholder)
        else:
            change = _pool_change(obj, pools.get(key), problems)
        if change:
            changes.append(change)
        elif not problems:
            unchanged += 1
    # Prune stale pools we own, unless a pod still holds one of their addresses.
    remaining_pools = []
    for key, pool in sorted(pools.items()):
        if key in wanted:
            continue
        if not (prune and _selector_match(pool, owner_selector)) or pool['metadata'].get('deletionTimestamp'):
            remaining_pools.append(pool)
            continue
        held = allocated_ips(pool)
        if held:
            kept.append('stale SpiderIPPool %s kept: it still holds %s' % (pool['metadata']['name'], _holders(held)))
            remaining_pools.append(pool)
            continue
        changes.append(_change('delete', None, pool))
    # The final address map must be overlap-free (foreign and kept pools included).
    final = [(o['metadata']['name'], usable(o['spec'])) for o in desired if o['kind'] == POOL]
    final += [(p['metadata']['name'], usable(p.get('spec') or {})) for p in remaining_pools]
    overlap = iprange.first_overlap(final)
    if overlap:
        problems.append('address %s would be in both SpiderIPPool %s and %s; remove it from the pool not managed here first' % overlap)
    # Stale SMCs we own go only when no remaining pool refers to them.
    referenced = set()
    for obj in list(desired) + remaining_pools:
        referenced.update((obj.get('spec') or {}).get('multusName') or [])
    for key, smc in sorted(smcs.items()):
        if key in wanted or not (prune and _selector_match(smc, owner_selector)):
            continue
        name = '%s/%s' % (smc['metadata']['namespace'], smc['metadata']['name'])
        if name in referenced:
            kept.append('stale SpiderMultusConfig %s kept: a pool still refers to it' % name)
            continue
        changes.append(_change('delete', None, smc))
    if problems:
        raise SyncError('; '.join(problems))
    return {'changes': order_changes(changes), 'kept': kept, 'unchanged': unchanged}


_ORDER = {
    (SMC, 'create'): 0, (SMC, 'replace'): 0, (SMC, 'update'): 0,
    (POOL, 'delete'): 1, (POOL, 'recreate'): 1,
    (POOL, 'update'): 2,
    (POOL, 'create'): 3,
    (SMC, 'delete'): 4,
}


def order_changes(changes):
    return sorted(changes, key=lambda c: (_ORDER[(c['kind'], c['action'])], c.get('namespace', ''), c['name']))


def _shrunk(change):
    """Update body holding only the addresses the pool keeps (the first step of an update that also adds)."""
    body = copy.deepcopy(change['body'])
    kept = iprange.subtract(iprange.parse(body['spec']['ips']), iprange.parse(change['added']))
    body['spec']['ips'] = iprange.format_ranges(kept)
    return body


def writes(changes):
    """The API writes of ``changes`` in phases; writes inside a phase are independent.

    Phases: multus configs (pools name them); pool deletions; pool shrinks; pool growths and
    creations; stale multus configs. Addresses leave a pool before another pool takes them, so
    an address moving between nodes needs no second run. An update that both removes and adds
    is split into a shrink and a growth (``then`` links the two: the growth must carry the
    resourceVersion the shrink returned). Each write: ``{change, verb, body, phase}``, and ``base``
    for a growth: the spec it expects to find (the shrink's).
    """
    phases = {0: [], 1: [], 2: [], 3: [], 4: []}
    for change in order_changes(changes):
        kind, action = change['kind'], change['action']
        if action == 'recreate':
            phases[1].append({'change': change, 'verb': 'delete', 'body': None})
            phases[3].append({'change': change, 'verb': 'create', 'body': change['body']})
        elif kind == POOL and action == 'update' and change['removed'] and change['added']:
            shrink = _shrunk(change)
            grow = {'change': change, 'verb': 'replace', 'body': change['body'], 'base': normalize_spec(POOL, shrink['spec'])}
            phases[2].append({'change': change, 'verb': 'replace', 'body': shrink, 'then': grow})
            phases[3].append(grow)
        elif kind == POOL and action == 'update':
            phases[2 if change['removed'] else 3].append({'change': change, 'verb': 'replace', 'body': change['body']})
        else:
            verb = {'create': 'create', 'update': 'replace', 'replace': 'replace', 'delete': 'delete'}[action]
            phases[_ORDER[(kind, action)]].append({'change': change, 'verb': verb, 'body': change['body']})
    out = []
    for number in sorted(phases):
        for write in phases[number]:
            write['phase'] = number
        if phases[number]:
            out.append(phases[number])
    return out


def rebase(write, fresh):
    """The body of a write that met HTTP 409, rebuilt on ``fresh`` (the object as it is now).

    Another writer came between the listing and the write; usually Spiderpool recording an
    allocation in the pool's status, or a concurrent run creating the same object. The planned spec
    is kept; resourceVersion, finalizers and labels come from ``fresh``. Returns None when ``fresh``
    already has the planned spec (a create expects nothing there, so any other spec fails). Raises
    ``SyncError`` when the object is being deleted, when its spec is no longer the one planned from,
    or when a pool now holds an address the write removes.
    """
    change, body = write['change'], write['body']
    kind, label = change['kind'], change_label(change)
    if fresh['metadata'].get('deletionTimestamp'):
        raise SyncError('%s is being deleted (its addresses are still being released); run again once it is gone' % label)
    spec = normalize_spec(kind, fresh.get('spec'))
    if spec == normalize_spec(kind, body['spec']):
        return None
    if spec != write.get('base', change['before'].get('spec', {})):
        raise SyncError('%s was changed by another writer while this run was writing it; run again' % label)
    if kind == POOL:
        lost = {ip: pod for ip, pod in allocated_ips(fresh).items() if not iprange.contains(usable(body['spec']), ip)}
        if lost:
            raise SyncError('refusing to remove %s from %s: in use; move or delete the pod first' % (_holders(lost), label))
    meta = {k: v for k, v in fresh['metadata'].items() if k != 'managedFields'}
    for field in ('labels', 'annotations'):
        if body['metadata'].get(field):
            meta[field] = dict(meta.get(field) or {}, **body['metadata'][field])
    return dict(body, metadata=meta)


def freed_addresses(changes):
    """Addresses leaving pools in this run (deleted pools, removals)."""
    freed = []
    for change in changes:
        if change['kind'] != POOL:
            continue
        if change['action'] in ('delete', 'recreate'):
            freed.extend(iprange.parse((change['before'].get('spec') or {}).get('ips') or []))
        elif change['action'] == 'update':
            freed.extend(iprange.parse(change['removed']))
    return iprange.merge(freed)


def needs_prior_writes(write, freed):
    """True when a server-side dry run of ``write`` cannot pass before the real earlier writes:
    the create of a re-created pool, or a pool taking addresses another pool gives up in this run."""
    change = write['change']
    if change['action'] == 'recreate' and write['verb'] == 'create':
        return True
    if change['kind'] != POOL or write['verb'] == 'delete' or not freed:
        return False
    return bool(iprange.intersect(iprange.parse(write['body']['spec'].get('ips') or []), freed))


def write_order(write):
    """Sort key of writes (and their errors): phase, then object, as ``order_changes`` sorts."""
    change = write['change']
    return (write.get('phase', 0), _ORDER[(change['kind'], change['action'])], change.get('namespace', ''), change['name'])


def run_phases(phases, make_write, workers, after_phase=None):
    """Make the writes of ``phases`` (from ``writes``) with ``make_write(write)``, at most ``workers`` at once.

    Writes inside a phase are independent, so all of them are tried even when some fail: one run
    names every object the API refuses, and the others are in place. A phase with a failure is the
    last one: later phases depend on it (addresses must leave a pool before another takes them). A
    fatal error stops new writes at once. ``after_phase(phase)`` runs after each phase without a
    failure. Returns ``{'done': [...], 'failed': [(write, message), ...], 'skipped': [...]}``, each in
    ``write_order`` whatever order the writes finished in.
    """
    stop = threading.Event()

    def attempt(write):
        if stop.is_set():
            return None
        try:
            make_write(write)
        except WriteError as exc:
            if exc.fatal:
                stop.set()
            return str(exc)
        return True

    done, failed, skipped = [], [], []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix='spiderpool-writes') as pool:
        for phase in phases:
            if failed or stop.is_set():
                skipped.extend(phase)
                continue
            for write, outcome in zip(phase, pool.map(attempt, phase)):
                if outcome is True:
                    done.append(write)
                elif outcome is None:
                    skipped.append(write)
                else:
                    failed.append((write, outcome))
            if after_phase and not failed and not stop.is_set():
                after_phase(phase)
    return {'done': sorted(done, key=write_order), 'failed': sorted(failed, key=lambda f: write_order(f[0])),
            'skipped': sorted(skipped, key=write_order)}


def applied_changes(changes, report):
    """The changes whose every write was made (a split update counts once both halves are)."""
    pending = {id(w['change']) for w in [f[0] for f in report['failed']] + report['skipped']}
    made = {id(w['change']) for w in report['done']}
    return [c for c in changes if id(c) in made and id(c) not in pending]


def failure_message(changes, report, dry_run=False, limit=10):
    """One line: the failed writes in object order (the first ``limit``), and what was applied."""
    failed = report['failed']
    total = len(report['done']) + len(failed) + len(report['skipped'])
    shown = '; '.join(message for _write, message in failed[:limit])
    if len(failed) > limit:
        shown += ' (and %d more, all in errors)' % (len(failed) - limit)
    if dry_run:
        return '%d of %d dry runs failed: %s. Nothing was written (check mode)' % (len(failed), total, shown)
    applied = applied_changes(changes, report)
    if not applied or len(applied) > limit:
        names = '%d of %d changes' % (len(applied), len(changes))
    else:
        names = ', '.join(change_label(c) for c in applied)
    return ('%d of %d writes failed: %s. Applied: %s; a re-run makes the rest once the cause is fixed'
            % (len(failed), total, shown, names))


def change_label(change):
    namespace = change.get('namespace')
    return '%s %s' % (change['kind'], '%s/%s' % (namespace, change['name']) if namespace else change['name'])
