"""Server-side `Table` rendering (Accept: ...;as=Table;g=meta.k8s.io) so `kubectl get` prints the
usual columns: built-in printers for common kinds, additionalPrinterColumns for custom resources."""
import datetime
import re


def age(stamp):
    if not stamp:
        return '<unknown>'
    then = datetime.datetime.strptime(stamp, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)
    seconds = int((datetime.datetime.now(datetime.timezone.utc) - then).total_seconds())
    for unit, size in (('d', 86400), ('h', 3600), ('m', 60)):
        if seconds >= size * 2:
            return '%d%s' % (seconds // size, unit)
    return '%ds' % max(seconds, 0)


def jsonpath(obj, path):
    """The dotted subset of JSONPath printer columns use: .a.b, .a[0].b, .a['x.y']."""
    node = obj
    for part in re.findall(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]|\['([^']+)'\]", path):
        key, index, quoted = part
        if isinstance(node, dict) and (key or quoted):
            node = node.get(key or quoted)
        elif isinstance(node, list) and index and int(index) < len(node):
            node = node[int(index)]
        else:
            return None
    return node


def _cond(obj, ctype):
    for cond in (obj.get('status') or {}).get('conditions') or []:
        if cond.get('type') == ctype:
            return cond.get('status')
    return None


def _pod(obj):
    statuses = (obj.get('status') or {}).get('containerStatuses') or []
    ready = sum(1 for s in statuses if s.get('ready'))
    total = len((obj.get('spec') or {}).get('containers') or [])
    status = obj.get('status') or {}
    phase = 'Terminating' if obj['metadata'].get('deletionTimestamp') else status.get('phase', '')
    return ['%d/%d' % (ready, total), phase, sum(s.get('restartCount', 0) for s in statuses),
            age(obj['metadata'].get('creationTimestamp')), status.get('podIP') or '<none>',
            (obj.get('spec') or {}).get('nodeName') or '<none>']


def _service(obj):
    spec = obj.get('spec') or {}
    ingress = ((obj.get('status') or {}).get('loadBalancer') or {}).get('ingress') or []
    external = ','.join(i.get('ip') or i.get('hostname', '') for i in ingress) or (
        '<pending>' if spec.get('type') == 'LoadBalancer' else '<none>')
    ports = ','.join('%s%s/%s' % (p.get('port'), ':%s' % p['nodePort'] if p.get('nodePort') else '',
                                  p.get('protocol', 'TCP')) for p in spec.get('ports') or []) or '<none>'
    return [spec.get('type', ''), spec.get('clusterIP', ''), external, ports]


def _node(obj):
    labels = obj['metadata'].get('labels') or {}
    roles = ','.join(sorted(k.split('/', 1)[1] for k in labels if k.startswith('node-role.kubernetes.io/'))) or '<none>'
    ip = next((a.get('address') for a in (obj.get('status') or {}).get('addresses') or []
               if a.get('type') == 'InternalIP'), '<none>')
    return ['Ready' if _cond(obj, 'Ready') == 'True' else 'NotReady', roles,
            ((obj.get('status') or {}).get('nodeInfo') or {}).get('kubeletVersion', ''), ip]


def _status(obj, *keys):
    status = obj.get('status') or {}
    return [status.get(k, 0) for k in keys]


def _ready(obj):
    return '%d/%d' % (_status(obj, 'readyReplicas')[0], (obj.get('spec') or {}).get('replicas', 0))


def _created(obj):
    return age(obj['metadata'].get('creationTimestamp'))


def _ints(*names):
    return [(n, 'integer', 0) for n in names]


AGE = ('Age', 'string', 0)
# kind -> (columns after Name as (name, type, priority), cells function)
PRINTERS = {
    'Pod': ([('Ready', 'string', 0), ('Status', 'string', 0), ('Restarts', 'integer', 0), AGE, ('IP', 'string', 1),
             ('Node', 'string', 1)], _pod),
    'Deployment': ([('Ready', 'string', 0)] + _ints('Up-to-date', 'Available') + [AGE],
                   lambda o: [_ready(o)] + _status(o, 'updatedReplicas', 'availableReplicas') + [_created(o)]),
    'DaemonSet': (_ints('Desired', 'Current', 'Ready', 'Up-to-date', 'Available') + [AGE],
                  lambda o: _status(o, 'desiredNumberScheduled', 'currentNumberScheduled', 'numberReady',
                                    'updatedNumberScheduled', 'numberAvailable') + [_created(o)]),
    'StatefulSet': ([('Ready', 'string', 0), AGE], lambda o: [_ready(o), _created(o)]),
    'ReplicaSet': (_ints('Desired', 'Current', 'Ready') + [AGE],
                   lambda o: [(o.get('spec') or {}).get('replicas', 0)] + _status(o, 'replicas', 'readyReplicas')
                   + [_created(o)]),
    'Job': ([('Status', 'string', 0), ('Completions', 'string', 0), AGE],
            lambda o: ['Complete' if _cond(o, 'Complete') == 'True' else 'Running', '%d/%d' % (
                _status(o, 'succeeded')[0], (o.get('spec') or {}).get('completions', 1)), _created(o)]),
    'Service': ([('Type', 'string', 0), ('Cluster-IP', 'string', 0), ('External-IP', 'string', 0),
                 ('Port(s)', 'string', 0), AGE], lambda o: _service(o) + [_created(o)]),
    'Node': ([('Status', 'string', 0), ('Roles', 'string', 0), AGE, ('Version', 'string', 0),
              ('Internal-IP', 'string', 1)], lambda o: _node(o)[:2] + [_created(o)] + _node(o)[2:]),
    'Namespace': ([('Status', 'string', 0), AGE], lambda o: [(o.get('status') or {}).get('phase', ''), _created(o)]),
}


def _columns_and_cells(res):
    if res.kind in PRINTERS and not res.custom:
        return PRINTERS[res.kind]
    if res.printer_columns:
        columns = [(c['name'], 'string' if c.get('type') == 'date' else c.get('type', 'string'), c.get('priority', 0))
                   for c in res.printer_columns]

        def custom(obj):
            out = []
            for col in res.printer_columns:
                value = jsonpath(obj, col.get('jsonPath', ''))
                if col.get('type') == 'date' and value:
                    value = age(value)
                out.append('<none>' if value is None else value)
            return out
        return columns, custom
    return [AGE], lambda o: [_created(o)]


def to_table(res, payload):
    """A get or list response as a meta.k8s.io/v1 Table."""
    items = payload['items'] if 'items' in payload else [payload]
    columns, cells = _columns_and_cells(res)
    definitions = [{'name': 'Name', 'type': 'string', 'format': 'name', 'description': 'Name of the object',
                    'priority': 0}]
    definitions += [{'name': n, 'type': t, 'format': '', 'description': n, 'priority': p} for n, t, p in columns]
    rows = [{'cells': [obj['metadata']['name']] + cells(obj),
             'object': {'kind': 'PartialObjectMetadata', 'apiVersion': 'meta.k8s.io/v1',
                        'metadata': obj['metadata']}} for obj in items]
    return {'kind': 'Table', 'apiVersion': 'meta.k8s.io/v1',
            'metadata': {'resourceVersion': (payload.get('metadata') or {}).get('resourceVersion', '')},
            'columnDefinitions': definitions, 'rows': rows}
