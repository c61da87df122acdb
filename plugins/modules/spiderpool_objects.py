#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: spiderpool_objects
short_description: Apply SpiderMultusConfigs and SpiderIPPools in one batch, safely
version_added: 0.1.0
description:
  - Brings a set of planned C(SpiderMultusConfig) and C(SpiderIPPool) objects (for example from the
    P(underlay.alicloud.spiderpool_plan#filter) filter) into the cluster in one module call, whatever the number of nodes.
  - Lists the current objects once per kind and compares semantically (pool address sets as sets, because the Spiderpool webhook
    rewrites C(ips) into merged ranges; server-filled defaults count as absent). An unchanged run makes no other request.
  - Writes in phases (multus configs; pool deletions; pool shrinks; pool growths and creations; stale multus configs), so
    that an address leaves a pool before another pool takes it. The writes of one phase run in parallel, at most O(workers)
    at a time.
  - The API server and the Spiderpool webhooks validate each write as it is made; there is no dry run first. An object they
    refuse fails alone. The other writes of its phase are still made, later phases are not, and the task fails naming
    every refused object in name order (RV(errors)) and what was applied (RV(changes[].applied)). Fixing the cause and
    running again makes the rest. An error that is not the object's own (no answer, HTTP 401, 429 or 5xx, such as a webhook
    that times out) starts no further write.
  - The chart's default-network placeholder (C(cniType=custom), created by the post-install job under the name of
    C(defaultCniCRName)) is replaced in full, never merged (Spiderpool issue 2700).
  - Never removes an address that a pod holds (C(status.allocatedIPs)) from a pool, never deletes a pool holding addresses,
    and never lets two pools share an address; such a run fails naming the address and the pod, and changes nothing.
  - An update that meets HTTP 409 (another writer since the listing, usually Spiderpool recording an allocation in the
    pool's status) is made again on the object as it is now, up to 3 times with jittered pauses, with the same checks; it
    fails naming the address and the pod when the pool now holds one that the update removes, and asks for a re-run when
    the object's spec itself was changed meanwhile. A create that meets HTTP 409 because another run created the object
    first succeeds when that object is as planned, and fails asking for a re-run when it is not.
  - Pools and multus configs carrying O(owner_labels) that are not in O(objects) are pruned (pools only when empty).
  - An updated pool keeps the operator switches C(disable) and C(excludeIPs); an updated multus config keeps the
    webhook-filled C(coordinator) block unless the plan sets them.
  - Talks to the API with the C(kubernetes) Python client; the kubeconfig is found as kubernetes.core finds it.
author:
  - underlay.alicloud maintainers (!UNKNOWN)
requirements:
  - kubernetes >= 24.2.0
options:
  objects:
    description:
      - The complete desired set of C(spiderpool.spidernet.io/v2beta1) C(SpiderMultusConfig) and C(SpiderIPPool) objects.
    type: list
    elements: dict
    required: true
  prune:
    description:
      - Delete objects labelled with O(owner_labels) that are not in O(objects).
      - A pool still holding allocated addresses is kept (reported in RV(kept)); a multus config a remaining pool names is kept.
    type: bool
    default: true
  owner_labels:
    description:
      - Labels marking the objects this collection owns. Only such objects are pruned.
    type: dict
    default:
      app.kubernetes.io/managed-by: underlay.alicloud
  replace_placeholder:
    description:
      - Replace a C(cniType=custom) placeholder multus config of the same name in full.
      - When V(false), finding one is an error.
    type: bool
    default: true
  workers:
    description:
      - Most API writes in flight at once (within one phase of writes; also the size of the connection pool).
      - Each SpiderIPPool write costs the Spiderpool webhook two uncached lists of every pool, so on a small control plane
        more workers mostly add load; far more than the default can make the webhook time out (HTTP 500), which
        stops the run.
    type: int
    default: 8
  wait_timeout:
    description:
      - Seconds to wait for a deleted pool to disappear before re-creating it or giving its addresses to another pool.
    type: int
    default: 120
  field_manager:
    description:
      - Field manager name recorded by the API server for our writes.
    type: str
    default: underlay-alicloud
  kubeconfig:
    description:
      - Path to a kubeconfig. Defaults to E(K8S_AUTH_KUBECONFIG), then the C(kubernetes) client default (E(KUBECONFIG) or
        C(~/.kube/config)).
    type: path
  context:
    description:
      - Kubeconfig context. Defaults to E(K8S_AUTH_CONTEXT), then the current context.
    type: str
  host:
    description:
      - API server URL; with O(api_key), used instead of a kubeconfig. Defaults to E(K8S_AUTH_HOST).
    type: str
  api_key:
    description:
      - Bearer token for O(host). Defaults to E(K8S_AUTH_API_KEY).
    type: str
  validate_certs:
    description:
      - Verify the API server certificate (only with O(host)). Defaults to E(K8S_AUTH_VERIFY_SSL).
    type: bool
    default: true
  ca_cert:
    description:
      - CA bundle for the API server certificate (only with O(host)). Defaults to E(K8S_AUTH_SSL_CA_CERT).
    type: path
  request_timeout:
    description:
      - Timeout of one API request, in seconds.
    type: int
    default: 30
notes:
  - Supports check mode and diff mode. In check mode every write is validated by a server-side dry run (C(dryRun=All)),
    so schema and webhook refusals are reported, all of them, and nothing is stored.
  - API requests are counted in RV(api_requests); an unchanged run makes exactly two (one list per kind).
"""

EXAMPLES = r"""
- name: Apply the planned pools and multus configs
  underlay.alicloud.spiderpool_objects:
    objects: "{{ (groups['k8s_cluster'] | map('extract', hostvars) | underlay.alicloud.spiderpool_plan).objects }}"

- name: Show what would change, without pruning anything
  underlay.alicloud.spiderpool_objects:
    objects: "{{ planned_objects }}"
    prune: false
  check_mode: true
  diff: true
"""

RETURN = r"""
changes:
  description: The changes planned, in the order they are written; made unless the task failed or ran in check mode.
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description: V(create), V(update), V(replace) (placeholder), V(recreate) (immutable subnet changed) or V(delete).
      type: str
    kind:
      description: Object kind.
      type: str
    name:
      description: Object name.
      type: str
    namespace:
      description: Namespace (multus configs only).
      type: str
    added:
      description: Address ranges added to a pool (updates).
      type: list
      elements: str
    removed:
      description: Address ranges removed from a pool (updates; never allocated ones).
      type: list
      elements: str
    applied:
      description: Every write of this change was made (always V(false) in check mode).
      type: bool
  sample: [{"action": "update", "kind": "SpiderIPPool", "name": "worker-eth0-v4", "added": ["172.31.199.195"], "removed": [],
            "applied": true}]
errors:
  description: The failed writes, in object order (the message names the first ten).
  returned: when a write (or, in check mode, a dry run) failed
  type: list
  elements: dict
  contains:
    object:
      description: Kind and name (C(namespace/name) for multus configs) of the object.
      type: str
    verb:
      description: V(create), V(replace) or V(delete).
      type: str
    msg:
      description: The API server's answer, naming the object.
      type: str
  sample: [{"object": "SpiderIPPool master-eth0-v4", "verb": "create",
            "msg": "create SpiderIPPool master-eth0-v4 failed (HTTP 422): ..."}]
kept:
  description: Stale objects not pruned, with the reason (allocated addresses or a pool referring to them).
  returned: always
  type: list
  elements: str
unchanged:
  description: Number of planned objects already as planned.
  returned: always
  type: int
api_requests:
  description: Number of Kubernetes API requests made.
  returned: always
  type: int
"""

import json
import random
import threading
import time

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.underlay.alicloud.plugins.module_utils import spiderpool_sync as sync

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import ApiException
    HAS_KUBERNETES = True
except ImportError:
    HAS_KUBERNETES = False


# Failures that are not the object's own: the API server is unreachable, overloaded or refuses us.
_FATAL_STATUS = (401, 429)
# A create or replace that meets HTTP 409 is rebuilt on the current object this many times, then fails.
CONFLICT_RETRIES = 3


class KubeError(Exception):
    """One failed API request, as a single line; ``status`` is the HTTP status (None: no answer)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class SpiderpoolApi:
    """The few CustomObjects calls this module needs, counted."""

    def __init__(self, params):
        self.timeout = params['request_timeout']
        self.field_manager = params['field_manager']
        self.requests = 0
        self.writes = 0
        self._lock = threading.Lock()
        configuration = k8s_client.Configuration()
        # One connection per worker: beyond the client's default pool (10) each extra request would
        # open, and then discard, a TLS connection of its own.
        configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, params['workers'])
        if params['host']:
            configuration.host = params['host']
            configuration.verify_ssl = params['validate_certs']
            if params['ca_cert']:
                configuration.ssl_ca_cert = params['ca_cert']
            if params['api_key']:
                configuration.api_key = {'authorization': 'Bearer %s' % params['api_key']}
            api_client = k8s_client.ApiClient(configuration)
        else:
            try:
                api_client = k8s_config.new_client_from_config(config_file=params['kubeconfig'], context=params['context'],
                                                               client_configuration=configuration)
            except (k8s_config.ConfigException, OSError) as exc:
                raise KubeError('cannot load a kubeconfig (%s): %s' % (params['kubeconfig'] or 'client default', exc)) from None
        self.api = k8s_client.CustomObjectsApi(api_client)

    def _call(self, what, func, *args, **kwargs):
        with self._lock:
            self.requests += 1
        try:
            return func(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            message = exc.reason
            try:
                message = json.loads(exc.body).get('message') or message
            except (TypeError, ValueError, AttributeError):
                pass
            raise KubeError('%s failed (HTTP %s): %s' % (what, exc.status, message), exc.status) from None
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise KubeError('%s failed: %s' % (what, exc)) from None

    def list(self, kind):
        try:
            return self._call('listing %ss' % kind, self.api.list_cluster_custom_object, sync.GROUP, sync.VERSION, sync.PLURALS[kind])['items']
        except KubeError as exc:
            if exc.status == 404:
                raise KubeError('%s is not served by the API server: install Spiderpool (its CRDs) first' % kind) from None
            raise

    def exists(self, change):
        try:
            self._call('reading %s' % change['name'], self.api.get_cluster_custom_object, sync.GROUP, sync.VERSION,
                       sync.PLURALS[change['kind']], change['name'])
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def write(self, write, dry_run):
        """One create/replace/delete; a real replace updates the resourceVersion of a following write."""
        try:
            result = self._write(write, dry_run)
        except KubeError as exc:
            fatal = exc.status is None or exc.status in _FATAL_STATUS or exc.status >= 500
            raise sync.WriteError(str(exc), fatal) from None
        if not dry_run:
            with self._lock:
                self.writes += 1
        return result

    def _write(self, write, dry_run):
        change, verb, body = write['change'], write['verb'], write['body']
        kind, name, namespace = change['kind'], change['name'], change.get('namespace')
        plural = sync.PLURALS[kind]
        what = '%s%s %s' % ('dry-run ' if dry_run else '', verb, sync.change_label(change))
        options = {'dry_run': 'All'} if dry_run else {}
        if verb != 'delete':
            options['field_manager'] = self.field_manager
        where = (sync.GROUP, sync.VERSION, namespace, plural) if namespace else (sync.GROUP, sync.VERSION, plural)
        if verb == 'create':
            body = dict(body, metadata={k: v for k, v in body['metadata'].items() if k in ('name', 'namespace', 'labels', 'annotations')})
            func = self.api.create_namespaced_custom_object if namespace else self.api.create_cluster_custom_object
            return self._send(write, what, lambda b: self._call(what, func, *where, b, **options), where, body)
        if verb == 'replace':
            func = self.api.replace_namespaced_custom_object if namespace else self.api.replace_cluster_custom_object
            result = self._send(write, what, lambda b: self._call(what, func, *where, name, b, **options), where, body)
            if write.get('then') and not dry_run:
                write['then']['body']['metadata']['resourceVersion'] = result['metadata']['resourceVersion']
            return result
        func = self.api.delete_namespaced_custom_object if namespace else self.api.delete_cluster_custom_object
        return self._call(what, func, *where, name, **options)

    def _send(self, write, what, send, where, body):
        """``send(body)``; on HTTP 409 (another writer since the listing: an update of the object, or a
        concurrent run creating it) the same change on the object as it is now, or nothing when the
        object already is as planned."""
        name = write['change']['name']
        for attempt in range(CONFLICT_RETRIES):
            try:
                return send(body)
            except KubeError as exc:
                if exc.status != 409:
                    raise
            time.sleep(random.uniform(0, 0.1 * 2 ** attempt))
            get = self.api.get_namespaced_custom_object if len(where) == 4 else self.api.get_cluster_custom_object
            fresh = self._call('reading %s' % sync.change_label(write['change']), get, *where, name)
            try:
                body = sync.rebase(dict(write, body=body), fresh)
            except sync.SyncError as exc:
                raise sync.WriteError(str(exc)) from None
            if body is None:
                return fresh
            if write['verb'] == 'create':
                raise sync.WriteError('%s failed (HTTP 409): it exists already' % what)
        return send(body)


def wait_gone(api, changes, timeout):
    """Deleted pools keep a finalizer until their addresses are released: wait until they are gone."""
    deadline = time.monotonic() + timeout
    for change in changes:
        while api.exists(change):
            if time.monotonic() > deadline:
                raise KubeError('%s %s is still terminating after %ss' % (change['kind'], change['name'], timeout))
            time.sleep(0.5)


def reconcile(api, params, check_mode):
    """List, plan, write. Returns ``(plan, report)``; ``report`` is ``run_phases``' account of the writes."""
    smcs, pools = api.list(sync.SMC), api.list(sync.POOL)
    plan = sync.plan_sync(params['objects'], smcs, pools, params['owner_labels'], prune=params['prune'],
                          replace_placeholder=params['replace_placeholder'])
    phases = sync.writes(plan['changes'])
    freed = sync.freed_addresses(plan['changes'])
    if check_mode:
        # The check is a server-side dry run of each write (schema, webhooks), all against the current
        # state, so one phase; writes that can only pass after earlier real ones are left out.
        dry = [w for phase in phases for w in phase if not sync.needs_prior_writes(w, freed)]
        return plan, sync.run_phases([dry], lambda w: api.write(w, True), params['workers'])
    dependent = any(sync.needs_prior_writes(w, freed) for phase in phases for w in phase)

    def settle(phase):
        deleted = [w['change'] for w in phase if w['verb'] == 'delete' and w['change']['kind'] == sync.POOL]
        if deleted and dependent:
            wait_gone(api, deleted, params['wait_timeout'])
    # No dry run first: the API server and its webhooks validate each real write; a refused object
    # fails alone and a re-run converges (a dry run per object doubled the requests and the time).
    return plan, sync.run_phases(phases, lambda w: api.write(w, False), params['workers'], settle)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            objects=dict(type='list', elements='dict', required=True),
            prune=dict(type='bool', default=True),
            owner_labels=dict(type='dict', default={'app.kubernetes.io/managed-by': 'underlay.alicloud'}),
            replace_placeholder=dict(type='bool', default=True),
            workers=dict(type='int', default=8),
            wait_timeout=dict(type='int', default=120),
            field_manager=dict(type='str', default='underlay-alicloud'),
            kubeconfig=dict(type='path', fallback=(env_fallback, ['K8S_AUTH_KUBECONFIG'])),
            context=dict(type='str', fallback=(env_fallback, ['K8S_AUTH_CONTEXT'])),
            host=dict(type='str', fallback=(env_fallback, ['K8S_AUTH_HOST'])),
            api_key=dict(type='str', no_log=True, fallback=(env_fallback, ['K8S_AUTH_API_KEY'])),
            validate_certs=dict(type='bool', default=True, fallback=(env_fallback, ['K8S_AUTH_VERIFY_SSL'])),
            ca_cert=dict(type='path', fallback=(env_fallback, ['K8S_AUTH_SSL_CA_CERT'])),
            request_timeout=dict(type='int', default=30),
        ),
        supports_check_mode=True,
    )
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib('kubernetes'))
    if module.params['workers'] < 1:
        module.fail_json(msg='workers must be at least 1, got %d' % module.params['workers'])
    result = {'changed': False, 'changes': [], 'kept': [], 'unchanged': 0, 'api_requests': 0}
    api = None
    try:
        sync.validate_desired(module.params['objects'])   # bad input fails before the cluster is contacted
        api = SpiderpoolApi(module.params)
        plan, report = reconcile(api, module.params, module.check_mode)
    except (sync.SyncError, KubeError) as exc:
        if api:
            result.update(api_requests=api.requests, changed=api.writes > 0)
        module.fail_json(msg=str(exc), **result)
    for message in plan['kept']:
        module.warn(message)
    applied = {id(c) for c in ([] if module.check_mode else sync.applied_changes(plan['changes'], report))}
    result.update(
        changed=bool(applied) if report['failed'] and not module.check_mode else bool(plan['changes']),
        changes=[dict({k: v for k, v in c.items() if k not in ('body', 'before', 'after')}, applied=id(c) in applied)
                 for c in plan['changes']],
        kept=plan['kept'],
        unchanged=plan['unchanged'],
        api_requests=api.requests,
    )
    if module._diff:
        result['diff'] = [{'before_header': '%s (before)' % sync.change_label(c),
                           'after_header': '%s (%s)' % (sync.change_label(c), c['action']),
                           'before': c['before'], 'after': c['after']} for c in plan['changes']]
    if report['failed']:
        result['errors'] = [{'object': sync.change_label(w['change']), 'verb': w['verb'], 'msg': message}
                            for w, message in report['failed']]
        module.fail_json(msg=sync.failure_message(plan['changes'], report, module.check_mode), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
