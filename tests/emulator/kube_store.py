"""The object store and verb semantics of the Kubernetes API double (no HTTP here).

One lock guards everything; resourceVersion is a global counter; every committed write appends a
watch event. Admission hooks (webhook emulation) run before persisting; controller hooks
(simulated kubelet) run after committed writes.
"""
import copy
import datetime
import json
import re
import threading
import time
import uuid

import kube_builtins
import kube_fields
import kube_patch
import kube_schema

try:
    import yaml
except ImportError:  # the CLI also runs under a bare python3; apply bodies are then JSON only
    yaml = None

NAME_RE = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')
LABEL_NAME_KINDS = {'Namespace', 'Service'}


class ApiError(Exception):
    """An error the apiserver reports as a metav1.Status body."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        body = {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure',
                'message': self.message, 'reason': self.reason, 'code': self.code}
        if self.details:
            body['details'] = self.details
        return body


def not_found(res, name):
    return ApiError(404, 'NotFound', '%s "%s" not found' % (res.group_resource, name),
                    {'name': name, 'group': res.group, 'kind': res.plural})


def invalid(res, name, causes):
    message = '%s "%s" is invalid: %s' % (res.kind_group, name, ', '.join(
        '%s: %s' % (c['field'], c['message']) if c.get('field') else c['message'] for c in causes))
    if len(causes) > 1:
        message = '%s "%s" is invalid: [%s]' % (res.kind_group, name, ', '.join(
            '%s: %s' % (c['field'], c['message']) if c.get('field') else c['message'] for c in causes))
    return ApiError(422, 'Invalid', message, {'name': name, 'group': res.group, 'kind': res.kind, 'causes': causes})


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


class Resource:
    """One served resource (plural) of one group/version."""

    def __init__(self, group, version, plural, kind, namespaced, short_names=(), status=False,
                 categories=(), schema=None, singular=None, printer_columns=None):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced, self.short_names, self.status = namespaced, list(short_names), status
        self.categories, self.schema = list(categories), schema
        self.singular = singular or kind.lower()
        self.custom = schema is not None
        self.printer_columns = printer_columns or []

    @property
    def api_version(self):
        return '%s/%s' % (self.group, self.version) if self.group else self.version

    @property
    def group_resource(self):
        return '%s.%s' % (self.plural, self.group) if self.group else self.plural

    @property
    def kind_group(self):
        return '%s.%s' % (self.kind, self.group) if self.group else self.kind

    def discovery(self):
        entries = [{'name': self.plural, 'singularName': self.singular, 'namespaced': self.namespaced,
                    'kind': self.kind, 'verbs': kube_builtins.RW, 'storageVersionHash': ''}]
        if self.short_names:
            entries[0]['shortNames'] = self.short_names
        if self.categories:
            entries[0]['categories'] = self.categories
        if self.status:
            entries.append({'name': self.plural + '/status', 'singularName': '', 'namespaced': self.namespaced,
                            'kind': self.kind, 'verbs': ['get', 'patch', 'update']})
        if self.kind == 'Pod':
            entries.append({'name': 'pods/exec', 'singularName': '', 'namespaced': True, 'kind': 'PodExecOptions',
                            'verbs': ['create', 'get']})
            entries.append({'name': 'pods/log', 'singularName': '', 'namespaced': True, 'kind': 'Pod',
                            'verbs': ['get']})
        return entries


# ---------------------------------------------------------------------------------------------
# selectors

def _split_terms(text):
    terms, depth, current = [], 0, ''
    for char in text:
        if char == '(':
            depth += 1
        elif char == ')':
            depth -= 1
        if char == ',' and depth == 0:
            terms.append(current.strip())
            current = ''
        else:
            current += char
    if current.strip():
        terms.append(current.strip())
    return terms


SET_TERM = re.compile(r'^(\S+)\s+(in|notin)\s+\((.*)\)$')


def parse_label_selector(text):
    """Selector string -> list of (key, op, values); raises ApiError 400 on syntax errors."""
    terms = []
    for term in _split_terms(text or ''):
        match = SET_TERM.match(term)
        if match:
            terms.append((match.group(1), match.group(2), {v.strip() for v in match.group(3).split(',') if v.strip()}))
        elif '!=' in term:
            key, value = term.split('!=', 1)
            terms.append((key.strip(), '!=', {value.strip()}))
        elif '==' in term or '=' in term:
            key, value = term.split('==', 1) if '==' in term else term.split('=', 1)
            terms.append((key.strip(), '=', {value.strip()}))
        elif term.startswith('!'):
            terms.append((term[1:].strip(), '!', set()))
        elif re.match(r'^[A-Za-z0-9./_-]+$', term):
            terms.append((term, 'exists', set()))
        else:
            raise ApiError(400, 'BadRequest', 'unable to parse requirement: invalid label selector %r' % term)
    return terms


def match_terms(terms, values):
    for key, op, wanted in terms:
        present = key in values
        value = values.get(key)
        if op == '=' and (not present or value not in wanted):
            return False
        if op == '!=' and present and value in wanted:
            return False
        if op == 'in' and (not present or value not in wanted):
            return False
        if op == 'notin' and present and value in wanted:
            return False
        if op == 'exists' and not present:
            return False
        if op == '!' and present:
            return False
    return True


def field_values(obj, terms):
    values = {}
    for key, _op, _wanted in terms:
        node = obj
        for part in key.split('.'):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            values[key] = str(node).lower() if isinstance(node, bool) else str(node)
        else:
            values[key] = ''
    return values


def parse_field_selector(text):
    terms = []
    for term in _split_terms(text or ''):
        if '!=' in term:
            key, value = term.split('!=', 1)
            terms.append((key.strip(), '!=', {value.strip()}))
        elif '=' in term:
            key, value = term.split('==', 1) if '==' in term else term.split('=', 1)
            terms.append((key.strip(), '=', {value.strip()}))
        else:
            raise ApiError(400, 'BadRequest', 'invalid field selector: %r' % term)
    return terms


def _seen_as(event, wanted):
    """Event type for a selector-filtered watch: an update that makes an object match (stop matching)
    is seen as ADDED (DELETED), as the real watch cache does; None when the watcher sees nothing."""
    _rv, etype, group, plural, obj, old = event
    now_in = wanted(group, plural, obj)
    if etype != 'MODIFIED' or old is None:
        return etype if now_in else None
    was_in = wanted(group, plural, old)
    if now_in and was_in:
        return 'MODIFIED'
    if now_in:
        return 'ADDED'
    return 'DELETED' if was_in else None


def spec_of(obj):
    return {k: v for k, v in obj.items() if k not in ('metadata', 'status')}


def strip_volatile(obj):
    """The object without the fields every write changes (for no-op detection)."""
    clean = copy.deepcopy(obj)
    meta = clean.get('metadata', {})
    for key in ('resourceVersion', 'managedFields'):
        meta.pop(key, None)
    return clean


# ---------------------------------------------------------------------------------------------

class Store:
    """All objects, all served resources, the watch event log and the hooks."""

    def __init__(self):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.rv = 0
        self.resources = {}       # (group, version) -> {plural: Resource}
        self.objects = {}         # (group, plural) -> {(ns, name): obj}
        self.events = []          # (rv, type, group, plural, obj)
        self.admission = []       # callables(store, op, res, obj, old) -> None, may mutate obj / raise ApiError
        self.controllers = []     # callables(store, event_type, res, obj)
        self.applied = {}         # (group, plural, ns, name, manager) -> last server-side applied body
        self.owners = {}          # (group, plural, ns, name) -> {(manager, operation): set of field paths}
        self._ip = 10
        self._reconciling = False
        for group, version, plural, kind, namespaced, shorts, status, cats in kube_builtins.BUILTIN:
            self.register(Resource(group, version, plural, kind, namespaced, shorts, status, cats))
        for name in ('default', 'kube-system', 'kube-public', 'kube-node-lease'):
            self.create(self.find('', 'v1', 'namespaces'), None, {'metadata': {'name': name}})

    # ---- registry -------------------------------------------------------------------------
    def register(self, res):
        with self.lock:
            self.resources.setdefault((res.group, res.version), {})[res.plural] = res
            self.objects.setdefault((res.group, res.plural), {})

    def find(self, group, version, plural):
        with self.lock:
            found = self.resources.get((group, version), {}).get(plural)
        if not found:
            raise ApiError(404, 'NotFound', 'the server could not find the requested resource')
        return found

    def by_kind(self, api_version, kind):
        group, _sep, version = api_version.rpartition('/')
        with self.lock:
            for res in self.resources.get((group, version), {}).values():
                if res.kind == kind:
                    return res
        raise ApiError(404, 'NotFound', 'no matches for kind "%s" in version "%s"' % (kind, api_version))

    def groups(self):
        with self.lock:
            result = {}
            for (group, version) in self.resources:
                result.setdefault(group, []).append(version)
            return result

    def _sync_crd(self, crd, deleted=False):
        spec = crd.get('spec', {})
        group, names = spec.get('group'), spec.get('names', {})
        for (grp, version) in list(self.resources):
            if grp == group:
                self.resources[(grp, version)].pop(names.get('plural'), None)
                if not self.resources[(grp, version)]:
                    del self.resources[(grp, version)]
        if deleted:
            self.objects.pop((group, names.get('plural')), None)
            return
        for version in spec.get('versions') or []:
            if not version.get('served', True):
                continue
            schema = (version.get('schema') or {}).get('openAPIV3Schema') or {
                'type': 'object', 'x-kubernetes-preserve-unknown-fields': True}
            self.register(Resource(group, version['name'], names.get('plural'), names.get('kind'),
                                   spec.get('scope') == 'Namespaced', names.get('shortNames') or [],
                                   'status' in (version.get('subresources') or {}), names.get('categories') or [],
                                   schema, names.get('singular'), version.get('additionalPrinterColumns')))

    # ---- helpers ----------------------------------------------------------------------------
    def _next_rv(self):
        self.rv += 1
        return str(self.rv)

    def allocate_ip(self):
        with self.lock:
            self._ip += 1
            return '10.96.%d.%d' % (self._ip // 250, self._ip % 250 + 1)

    def _table(self, res):
        return self.objects.setdefault((res.group, res.plural), {})

    @staticmethod
    def _served(res, obj, deep=True):
        # stored objects are never mutated in place, so a shallow copy is safe for serialisation
        out = copy.deepcopy(obj) if deep else dict(obj)
        out['apiVersion'], out['kind'] = res.api_version, res.kind
        return out

    def _check_namespace(self, res, namespace, creating):
        if not res.namespaced:
            return
        if not namespace:
            raise ApiError(400, 'BadRequest', 'the server could not find the requested resource (namespace required)')
        if creating:
            ns = self.objects[('', 'namespaces')].get((None, namespace))
            if ns is None:
                raise ApiError(404, 'NotFound', 'namespaces "%s" not found' % namespace,
                               {'name': namespace, 'kind': 'namespaces'})
            if ns['metadata'].get('deletionTimestamp'):
                raise ApiError(403, 'Forbidden', 'unable to create new content in namespace %s because it is being '
                               'terminated' % namespace)

    def _prepare(self, res, obj, old, op, subresource=None):
        """Defaults, schema pruning/validation and admission for a would-be object."""
        name = obj['metadata'].get('name')
        if res.custom:
            status = obj.get('status')
            causes = kube_schema.process(res.schema, obj)
            if res.status and old is not None and subresource != 'status':
                obj.pop('status', None)
                if 'status' in old:
                    obj['status'] = copy.deepcopy(old['status'])
            elif res.status and old is None and status is not None:
                obj.pop('status', None)
        else:
            if res.status and old is None:
                obj.pop('status', None)  # status is reset on create, like the real strategies do
            kube_builtins.apply_defaults(res.kind, obj, self.allocate_ip)
            causes = kube_builtins.validate(res.kind, obj)
            if res.status and old is not None and subresource != 'status':
                obj['status'] = copy.deepcopy(old.get('status', obj.get('status')))
                if obj['status'] is None:
                    obj.pop('status')
        if causes:
            raise invalid(res, name, causes)
        for hook in self.admission:
            hook(self, 'UPDATE_STATUS' if subresource == 'status' else op, res, obj, old)

    def _event(self, etype, res, obj, old=None):
        # stored objects are replaced, never mutated, so the event can keep references
        self.events.append((self.rv, etype, res.group, res.plural, obj, old))
        if len(self.events) > 20000:
            del self.events[:10000]
        self.cond.notify_all()

    def _run_controllers(self, etype, res, obj):
        if self._reconciling or not self.controllers:
            return
        self._reconciling = True
        try:
            for hook in list(self.controllers):
                hook(self, etype, res, obj)
        finally:
            self._reconciling = False

    # ---- verbs ------------------------------------------------------------------------------
    def get(self, res, namespace, name):
        with self.lock:
            obj = self._table(res).get((namespace if res.namespaced else None, name))
            if obj is None:
                raise not_found(res, name)
            return self._served(res, obj)

    def list(self, res, namespace=None, label_selector=None, field_selector=None):
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector)
        with self.lock:
            items = []
            for (ns, _name), obj in sorted(self._table(res).items(), key=lambda kv: (kv[0][0] or '', kv[0][1])):
                if res.namespaced and namespace and ns != namespace:
                    continue
                if not match_terms(labels, obj['metadata'].get('labels') or {}):
                    continue
                if fields and not match_terms(fields, field_values(obj, fields)):
                    continue
                item = self._served(res, obj, deep=False)
                if not res.custom:  # typed lists of built-in kinds omit the items' TypeMeta
                    del item['apiVersion'], item['kind']
                items.append(item)
            return {'kind': res.kind + 'List', 'apiVersion': res.api_version,
                    'metadata': {'resourceVersion': str(self.rv)}, 'items': items}

    def create(self, res, namespace, body, dry_run=False, field_manager=None, operation='Update'):
        if not isinstance(body, dict):
            raise ApiError(400, 'BadRequest', 'the body of the request was in an unknown format')
        obj = copy.deepcopy(body)
        self._check_kind(res, obj)
        meta = obj.setdefault('metadata', {})
        with self.lock:
            if res.namespaced:
                if meta.get('namespace') and namespace and meta['namespace'] != namespace:
                    raise ApiError(400, 'BadRequest', 'the namespace of the provided object does not match the '
                                   'namespace sent on the request')
                namespace = namespace or meta.get('namespace')
                meta['namespace'] = namespace
            else:
                meta.pop('namespace', None)
                namespace = None
            self._check_namespace(res, namespace, True)
            if not meta.get('name') and meta.get('generateName'):
                meta['name'] = meta['generateName'] + uuid.uuid4().hex[:5]
            name = meta.get('name')
            self._check_name(res, name)
            if (namespace, name) in self._table(res):
                raise ApiError(409, 'AlreadyExists', '%s "%s" already exists' % (res.group_resource, name),
                               {'name': name, 'group': res.group, 'kind': res.plural})
            for key in ('resourceVersion', 'deletionTimestamp', 'deletionGracePeriodSeconds'):
                meta.pop(key, None)
            meta['uid'] = str(uuid.uuid4())
            meta['creationTimestamp'] = now()
            if res.custom or res.kind in kube_builtins.GENERATION_KINDS:
                meta['generation'] = 1
            else:
                meta.pop('generation', None)
            owners = {}
            if field_manager and operation == 'Apply':
                kube_fields.record_apply(owners, field_manager, body, set())
            elif field_manager:
                owners[(field_manager, 'Update')] = kube_fields.leaf_paths(body)
            meta.pop('managedFields', None)
            if owners:
                meta['managedFields'] = kube_fields.managed_fields(owners, res.api_version, now())
            self._prepare(res, obj, None, 'CREATE')
            if dry_run:
                meta['resourceVersion'] = ''
                return self._served(res, obj)
            meta['resourceVersion'] = self._next_rv()
            self._table(res)[(namespace, name)] = obj
            self.owners[(res.group, res.plural, namespace, name)] = owners
            if res.kind == 'CustomResourceDefinition':
                self._sync_crd(obj)
            if res.kind == 'Namespace':
                self._seed_namespace(name)
            self._event('ADDED', res, obj)
            self._run_controllers('ADDED', res, obj)
            return self._served(res, obj)

    def _seed_namespace(self, name):
        sa_res = self.find('', 'v1', 'serviceaccounts')
        self.create(sa_res, name, {'metadata': {'name': 'default'}})

    def _check_kind(self, res, obj):
        kind, api_version = obj.get('kind'), obj.get('apiVersion')
        if kind and kind != res.kind:
            raise ApiError(400, 'BadRequest', 'the kind in the data (%s) does not match the expected kind (%s)'
                           % (kind, res.kind))
        if api_version and api_version.rpartition('/')[0] != res.group:
            raise ApiError(400, 'BadRequest', 'the API version in the data (%s) does not match the expected API '
                           'version (%s)' % (api_version, res.api_version))
        obj['apiVersion'], obj['kind'] = res.api_version, res.kind

    def _check_name(self, res, name):
        if not name:
            raise invalid(res, name or '', [{'reason': 'FieldValueRequired', 'field': 'metadata.name',
                                             'message': 'Required value: name or generateName is required'}])
        if res.group == 'rbac.authorization.k8s.io':
            # RBAC objects only need a valid path segment (e.g. system:cloud-controller-manager).
            if name in ('.', '..') or '/' in name or '%' in name:
                raise invalid(res, name, [{'reason': 'FieldValueInvalid', 'field': 'metadata.name',
                                           'message': 'Invalid value: "%s": may not contain \'/\' or \'%%\'' % name}])
            return
        limit = 63 if res.kind in LABEL_NAME_KINDS else 253
        if len(name) > limit or not NAME_RE.match(name) or (limit == 63 and '.' in name):
            raise invalid(res, name, [{'reason': 'FieldValueInvalid', 'field': 'metadata.name',
                                       'message': 'Invalid value: "%s": a lowercase RFC 1123 %s must consist of lower '
                                                  "case alphanumeric characters, '-' or '.'"
                                                  % (name, 'label' if limit == 63 else 'subdomain')}])

    def update(self, res, namespace, name, body, dry_run=False, subresource=None, field_manager=None, _internal=False):
        if not isinstance(body, dict):
            raise ApiError(400, 'BadRequest', 'the body of the request was in an unknown format')
        namespace = namespace if res.namespaced else None
        with self.lock:
            old = self._table(res).get((namespace, name))
            if old is None:
                raise not_found(res, name)
            obj = copy.deepcopy(body)
            self._check_kind(res, obj)
            meta = obj.setdefault('metadata', {})
            if meta.get('name', name) != name:
                raise ApiError(400, 'BadRequest', 'the name of the object (%s) does not match the name on the URL (%s)'
                               % (meta.get('name'), name))
            given_rv = meta.get('resourceVersion')
            if given_rv and given_rv != old['metadata']['resourceVersion']:
                raise ApiError(409, 'Conflict', 'Operation cannot be fulfilled on %s "%s": the object has been '
                               'modified; please apply your changes to the latest version and try again'
                               % (res.group_resource, name), {'name': name, 'group': res.group, 'kind': res.plural})
            if meta.get('uid') and meta['uid'] != old['metadata']['uid']:
                raise ApiError(409, 'Conflict', 'Precondition failed: UID in precondition: %s, UID in object meta: %s'
                               % (old['metadata']['uid'], meta['uid']))
            if subresource == 'status':
                status = obj.get('status')
                obj = copy.deepcopy(old)
                if status is None:
                    obj.pop('status', None)
                else:
                    obj['status'] = status
                meta = obj['metadata']
            for key in ('uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation'):
                if key in old['metadata']:
                    meta[key] = old['metadata'][key]
                else:
                    meta.pop(key, None)
            meta['name'] = name
            if res.namespaced:
                meta['namespace'] = namespace
            if field_manager != '__apply__':  # server-side apply brings its own managedFields
                meta.pop('managedFields', None)
                if old['metadata'].get('managedFields'):
                    meta['managedFields'] = copy.deepcopy(old['metadata']['managedFields'])
            self._prepare(res, obj, old, 'UPDATE', subresource)
            owner_key = (res.group, res.plural, namespace, name)
            owners = self.owners.get(owner_key, {})
            if field_manager and field_manager != '__apply__' and subresource != 'status':
                owners = copy.deepcopy(owners)
                kube_fields.record_update(owners, field_manager, old, obj)
                meta['managedFields'] = kube_fields.managed_fields(owners, res.api_version, now())
            if 'generation' in meta and spec_of(obj) != spec_of(old):
                meta['generation'] = old['metadata']['generation'] + 1
            if strip_volatile(obj) == strip_volatile(old):
                return self._served(res, old)
            if dry_run:
                meta['resourceVersion'] = old['metadata']['resourceVersion']
                return self._served(res, obj)
            if meta.get('deletionTimestamp') and not meta.get('finalizers'):
                return self._remove(res, namespace, name, obj)
            meta['resourceVersion'] = self._next_rv()
            self._table(res)[(namespace, name)] = obj
            self.owners[owner_key] = owners
            if res.kind == 'CustomResourceDefinition':
                self._sync_crd(obj)
            self._event('MODIFIED', res, obj, old)
            if not _internal:
                self._run_controllers('MODIFIED', res, obj)
            return self._served(res, obj)

    def patch(self, res, namespace, name, content_type, raw, dry_run=False, subresource=None,
              field_manager=None, force=False):
        content_type = (content_type or '').split(';')[0].strip()
        with self.lock:
            key = (namespace if res.namespaced else None, name)
            current = self._table(res).get(key)
            if content_type == 'application/apply-patch+yaml':
                return self._apply(res, namespace, name, raw, current, dry_run, subresource, field_manager, force)
            if current is None:
                raise not_found(res, name)
            try:
                patch = json.loads(raw or b'null')
            except ValueError as exc:
                raise ApiError(400, 'BadRequest', 'error decoding patch: %s' % exc) from exc
            base = self._served(res, current)
            try:
                if content_type == 'application/merge-patch+json':
                    new = kube_patch.merge_patch(base, patch)
                elif content_type == 'application/json-patch+json':
                    new = kube_patch.json_patch(base, patch)
                elif content_type == 'application/strategic-merge-patch+json':
                    if res.custom:
                        raise ApiError(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format '
                                       '- accepted media types include: application/json-patch+json, '
                                       'application/merge-patch+json, application/apply-patch+yaml')
                    new = kube_patch.strategic_merge(base, patch)
                else:
                    raise ApiError(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - '
                                   'accepted media types include: application/json-patch+json, '
                                   'application/merge-patch+json, application/apply-patch+yaml')
            except kube_patch.PatchError as exc:
                raise ApiError(422, 'Invalid', str(exc)) from exc
            if not isinstance(new, dict):
                raise ApiError(422, 'Invalid', 'patch did not produce an object')
            new.setdefault('metadata', {})['resourceVersion'] = (patch.get('metadata') or {}).get(
                'resourceVersion') if isinstance(patch, dict) else None
            if not new['metadata']['resourceVersion']:
                new['metadata']['resourceVersion'] = current['metadata']['resourceVersion']
            return self.update(res, namespace, name, new, dry_run, subresource, field_manager)

    def _apply(self, res, namespace, name, raw, current, dry_run, subresource, manager, force):
        if not manager:
            raise ApiError(422, 'Invalid', 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                           'is required for apply patch')
        try:
            text = raw.decode() if isinstance(raw, bytes) else raw
            body = yaml.safe_load(text) if yaml else json.loads(text)
        except (ValueError, AttributeError) as exc:
            raise ApiError(400, 'BadRequest', 'error decoding YAML: %s' % exc) from exc
        if not isinstance(body, dict):
            raise ApiError(400, 'BadRequest', 'apply body must be an object')
        body.setdefault('metadata', {}).setdefault('name', name)
        ns = namespace if res.namespaced else None
        key = (res.group, res.plural, ns, name, manager)
        if current is None:
            if subresource:
                raise not_found(res, name)
            created = self.create(res, namespace, body, dry_run, manager, 'Apply')
            if not dry_run:
                self.applied[key] = copy.deepcopy(body)
            return created
        previous = self.applied.get(key, {})
        patch = kube_patch.removal_patch(previous, body)
        patch.get('metadata', {}).pop('resourceVersion', None)
        base = self._served(res, current)
        owner_key = (res.group, res.plural, ns, name)
        owners = copy.deepcopy(self.owners.get(owner_key, {}))
        clash = kube_fields.conflicts(owners, manager, body, base)
        if clash and not force:
            raise ApiError(409, 'Conflict', 'Apply failed with %d conflict%s: %s' % (
                len(clash), 's' if len(clash) > 1 else '', '; '.join(
                    'conflict with "%s" using %s: .%s' % (m, res.api_version, '.'.join(p)) for m, p in clash)),
                {'name': name, 'group': res.group, 'kind': res.plural, 'causes': [
                    {'reason': 'FieldManagerConflict', 'message': 'conflict with "%s" using %s' % (m, res.api_version),
                     'field': '.' + '.'.join(p)} for m, p in clash]})
        kube_fields.record_apply(owners, manager, body, {p for _m, p in clash})
        merge = kube_patch.merge_patch if res.custom else kube_patch.strategic_merge
        new = merge(base, patch)
        new['metadata']['managedFields'] = kube_fields.managed_fields(owners, res.api_version, now())
        result = self.update(res, namespace, name, new, dry_run, subresource, '__apply__')
        if not dry_run:
            self.applied[key] = copy.deepcopy(body)
            if owner_key in self.owners or owners:
                self.owners[owner_key] = owners
        return result

    def delete(self, res, namespace, name, dry_run=False, propagation=None):
        del propagation  # dependents are always removed in the background
        namespace = namespace if res.namespaced else None
        with self.lock:
            obj = self._table(res).get((namespace, name))
            if obj is None:
                raise not_found(res, name)
            for hook in self.admission:
                hook(self, 'DELETE', res, copy.deepcopy(obj), obj)
            if dry_run:
                return self._served(res, obj)
            if obj['metadata'].get('finalizers'):
                if not obj['metadata'].get('deletionTimestamp'):
                    old, obj = obj, copy.deepcopy(obj)
                    obj['metadata']['deletionTimestamp'] = now()
                    obj['metadata']['deletionGracePeriodSeconds'] = 0
                    obj['metadata']['resourceVersion'] = self._next_rv()
                    self._table(res)[(namespace, name)] = obj
                    self._event('MODIFIED', res, obj, old)
                    self._run_controllers('MODIFIED', res, obj)
                return self._served(res, obj)
            return self._remove(res, namespace, name, obj)

    def _remove(self, res, namespace, name, obj):
        self._table(res).pop((namespace, name), None)
        self.owners.pop((res.group, res.plural, namespace, name), None)
        for key in [k for k in self.applied if k[:4] == (res.group, res.plural, namespace, name)]:
            del self.applied[key]
        obj = copy.deepcopy(obj)
        obj['metadata']['resourceVersion'] = self._next_rv()
        self._event('DELETED', res, obj)
        if res.kind == 'CustomResourceDefinition':
            self._purge_custom(obj)
            self._sync_crd(obj, deleted=True)
        if res.kind == 'Namespace':
            self._purge_namespace(name)
        self._collect_dependents(obj['metadata']['uid'])
        self._run_controllers('DELETED', res, obj)
        return self._served(res, obj)

    def _force_remove(self, res, ns, name):
        obj = self._table(res).get((ns, name))
        if obj is not None:
            self._remove(res, ns, name, obj)

    def _purge_custom(self, crd):
        spec = crd.get('spec', {})
        for res in self._resources_for(spec.get('group'), spec.get('names', {}).get('plural')):
            for (ns, name) in list(self._table(res)):
                self._force_remove(res, ns, name)
            break

    def _resources_for(self, group, plural):
        return [r for (g, _v), table in self.resources.items() if g == group for p, r in table.items() if p == plural]

    def _purge_namespace(self, namespace):
        for table in list(self.resources.values()):
            for res in list(table.values()):
                if res.namespaced:
                    for (ns, name) in [k for k in self._table(res) if k[0] == namespace]:
                        self._force_remove(res, ns, name)

    def _collect_dependents(self, uid):
        seen = set()
        for table in list(self.resources.values()):
            for res in list(table.values()):
                if (res.group, res.plural) in seen:
                    continue
                seen.add((res.group, res.plural))
                for (ns, name), obj in list(self._table(res).items()):
                    owners = obj['metadata'].get('ownerReferences') or []
                    if any(o.get('uid') == uid for o in owners):
                        self._force_remove(res, ns, name)

    def delete_collection(self, res, namespace, label_selector=None, field_selector=None, dry_run=False):
        with self.lock:
            listed = self.list(res, namespace, label_selector, field_selector)
            for item in listed['items']:
                self.delete(res, item['metadata'].get('namespace'), item['metadata']['name'], dry_run)
            return listed

    # ---- watch ------------------------------------------------------------------------------
    def watch(self, res, namespace, label_selector, field_selector, resource_version, timeout, send_initial=False):
        """Yield (type, object) pairs until `timeout` seconds pass. With send_initial (the watch-list
        protocol) the existing objects come first, closed by a BOOKMARK marked initial-events-end."""
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector)
        deadline = time.monotonic() + timeout

        def wanted(group, plural, obj):
            if (group, plural) != (res.group, res.plural):
                return False
            if res.namespaced and namespace and obj['metadata'].get('namespace') != namespace:
                return False
            return match_terms(labels, obj['metadata'].get('labels') or {}) and (
                not fields or match_terms(fields, field_values(obj, fields)))

        with self.lock:
            if send_initial or resource_version in (None, '', '0'):
                initial = [self._served(res, o) for o in self._table(res).values()
                           if wanted(res.group, res.plural, o)]
                since = self.rv
            else:
                initial, since = [], int(resource_version)
        for obj in initial:
            yield 'ADDED', obj
        if send_initial:
            yield 'BOOKMARK', {'apiVersion': res.api_version, 'kind': res.kind, 'metadata': {
                'resourceVersion': str(since), 'annotations': {'k8s.io/initial-events-end': 'true'}}}
        while True:
            with self.cond:
                pending = [e for e in self.events if e[0] > since]
                while not pending:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    self.cond.wait(min(left, 1.0))
                    pending = [e for e in self.events if e[0] > since]
                since = pending[-1][0]
                batch = [(kind, self._served(res, e[4])) for e in pending for kind in [_seen_as(e, wanted)] if kind]
            yield from batch

    # ---- library helpers ----------------------------------------------------------------------
    def objects_of(self, kind, namespace=None, api_version=None):
        """Every stored object of a kind (optionally one namespace), as served."""
        with self.lock:
            matches = []
            for (group, version), table in self.resources.items():
                for res in table.values():
                    if res.kind == kind and (api_version is None or res.api_version == api_version):
                        matches.append(res)
            if not matches:
                return []
            res = matches[0]
            ordered = sorted(self._table(res).items(), key=lambda kv: (kv[0][0] or '', kv[0][1]))
            return [self._served(res, o) for (ns, _n), o in ordered if namespace is None or ns == namespace]

    def iter_objects(self, kind):
        """Stored objects of a kind without copying (read-only; callers hold no lock)."""
        with self.lock:
            tables = {(r.group, r.plural) for t in self.resources.values() for r in t.values() if r.kind == kind}
            return [o for key in tables for o in list(self.objects.get(key, {}).values())]

    def dump(self):
        with self.lock:
            out = {}
            seen = set()
            for table in self.resources.values():
                for res in table.values():
                    if (res.group, res.plural) in seen:
                        continue
                    seen.add((res.group, res.plural))
                    items = [self._served(res, o) for o in self._table(res).values()]
                    if items:
                        out[res.group_resource] = items
            return out
