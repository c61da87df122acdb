"""Field ownership for server-side apply, simplified: fields are leaf paths (lists are atomic), each
manager owns a set of them; an apply conflicts when it sets a different value on a field another
manager owns, unless forced. Rendered into metadata.managedFields as FieldsV1."""

OWNED_METADATA = ('labels', 'annotations', 'finalizers', 'ownerReferences')


def leaf_paths(obj):
    """Owned paths of an object body: everything but apiVersion/kind/status and server metadata."""
    paths = set()
    for key, value in (obj or {}).items():
        if key in ('apiVersion', 'kind', 'status'):
            continue
        if key == 'metadata':
            for meta_key in OWNED_METADATA:
                if meta_key in (value or {}):
                    _walk(value[meta_key], ('metadata', meta_key), paths)
            continue
        _walk(value, (key,), paths)
    return paths


def _walk(value, prefix, paths):
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _walk(item, prefix + (key,), paths)
    else:
        paths.add(prefix)


def value_at(obj, path):
    node = obj
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _related(path, other):
    shorter = min(len(path), len(other))
    return path[:shorter] == other[:shorter]


def changed_paths(old, new):
    """Paths of `new` whose value differs from `old` (what an Update operation takes ownership of)."""
    return {p for p in leaf_paths(new) if value_at(old, p) != value_at(new, p)}


def conflicts(owners, manager, body, current):
    """Sorted [(other manager, path)] where the apply body sets a value different from the live one on a
    field another manager owns (compared at the shorter of the two related paths)."""
    applied = leaf_paths(body)
    found = set()
    for (other, operation), paths in owners.items():
        if (other, operation) == (manager, 'Apply'):
            continue
        for owned in paths:
            for path in applied:
                if _related(owned, path):
                    short = owned if len(owned) <= len(path) else path
                    if value_at(current, short) != value_at(body, short):
                        found.add((other, owned))
    return sorted(found)


def record_update(owners, manager, old, new):
    """An Update by `manager` owns what it changed; nobody keeps ownership of changed or removed fields."""
    changed = changed_paths(old or {}, new)
    removed = leaf_paths(old or {}) - leaf_paths(new)
    for key in list(owners):
        owners[key] = {p for p in owners[key] if not any(_related(p, c) for c in changed | removed)}
        if not owners[key]:
            del owners[key]
    if changed:
        owners[(manager, 'Update')] = owners.get((manager, 'Update'), set()) | changed


def record_apply(owners, manager, body, taken):
    """An Apply owns exactly what it applied; forced conflicts move the contested fields to it."""
    for key in list(owners):
        owners[key] = {p for p in owners[key] if p not in taken}
        if not owners[key]:
            del owners[key]
    owners[(manager, 'Apply')] = leaf_paths(body)


def fields_v1(paths):
    tree = {}
    for path in sorted(paths):
        node = tree
        for key in path:
            node = node.setdefault('f:%s' % key, {})
    return tree


def managed_fields(owners, api_version, stamp):
    return [{'manager': manager, 'operation': operation, 'apiVersion': api_version, 'time': stamp,
             'fieldsType': 'FieldsV1', 'fieldsV1': fields_v1(paths)}
            for (manager, operation), paths in sorted(owners.items()) if paths]
