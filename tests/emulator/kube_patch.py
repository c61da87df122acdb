"""Patch flavours the apiserver accepts: JSON merge (RFC 7386), JSON patch (RFC 6902), strategic merge
(built-in kinds only, with the merge keys of the common list fields) and an approximation of
server-side apply."""
import copy


class PatchError(Exception):
    """A patch that cannot be applied (the apiserver answers 422 or 400)."""


# Strategic-merge list fields and their merge keys (k8s.io/api patchMergeKey tags, common cases).
MERGE_KEYS = {
    'containers': 'name', 'initContainers': 'name', 'ephemeralContainers': 'name',
    'env': 'name', 'volumes': 'name', 'volumeMounts': 'mountPath', 'volumeDevices': 'devicePath',
    'imagePullSecrets': 'name', 'hostAliases': 'ip', 'conditions': 'type', 'ownerReferences': 'uid',
    'secrets': 'name', 'topologySpreadConstraints': 'topologyKey', 'resourceClaims': 'name',
}
# Primitive lists with patchStrategy=merge (union instead of replace).
MERGE_PRIMITIVES = {'finalizers'}


def merge_patch(target, patch):
    """RFC 7386: objects merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path):
    if path == '':
        return []
    if not path.startswith('/'):
        raise PatchError('invalid JSON pointer %r' % path)
    return [p.replace('~1', '/').replace('~0', '~') for p in path[1:].split('/')]


def _parent(doc, parts, path):
    node = doc
    for part in parts[:-1]:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise PatchError('path %s does not exist' % path) from exc
    return node


def _get(doc, path):
    parts = _pointer(path)
    if not parts:
        return doc
    node = _parent(doc, parts, path)
    try:
        return node[int(parts[-1])] if isinstance(node, list) else node[parts[-1]]
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise PatchError('path %s does not exist' % path) from exc


def _add(doc, path, value):
    parts = _pointer(path)
    if not parts:
        return value
    node = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(node, list):
        index = len(node) if last == '-' else int(last)
        if index > len(node):
            raise PatchError('index out of range at %s' % path)
        node.insert(index, value)
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise PatchError('path %s does not exist' % path)
    return doc


def _remove(doc, path):
    parts = _pointer(path)
    node = _parent(doc, parts, path)
    try:
        if isinstance(node, list):
            del node[int(parts[-1])]
        else:
            del node[parts[-1]]
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise PatchError('unable to remove nonexistent key: %s' % path) from exc
    return doc


def json_patch(target, ops):
    """RFC 6902 add/remove/replace/move/copy/test."""
    if not isinstance(ops, list):
        raise PatchError('json patch must be a list of operations')
    doc = copy.deepcopy(target)
    for op in ops:
        kind, path = op.get('op'), op.get('path', '')
        if kind == 'add':
            doc = _add(doc, path, copy.deepcopy(op.get('value')))
        elif kind == 'remove':
            doc = _remove(doc, path)
        elif kind == 'replace':
            _get(doc, path)
            doc = _add(_remove(doc, path), path, copy.deepcopy(op.get('value'))) if _pointer(path) else op.get('value')
        elif kind in ('move', 'copy'):
            value = copy.deepcopy(_get(doc, op.get('from', '')))
            if kind == 'move':
                doc = _remove(doc, op.get('from', ''))
            doc = _add(doc, path, value)
        elif kind == 'test':
            if _get(doc, path) != op.get('value'):
                raise PatchError('testing value %s failed' % path)
        else:
            raise PatchError('unexpected op %r' % kind)
    return doc


def _merge_key(field, items):
    if field == 'ports':
        sample = next((i for i in items if isinstance(i, dict)), {})
        return 'containerPort' if 'containerPort' in sample else 'port'
    return MERGE_KEYS.get(field)


def strategic_merge(target, patch):
    """Strategic merge patch for built-in kinds: like merge patch, but keyed lists merge element-wise
    and the `$patch`, `$setElementOrder/`, `$retainKeys` and `$deleteFromPrimitiveList/` directives work."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get('$patch') == 'replace':
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != '$patch'}
    if patch.get('$patch') == 'delete':
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get('$retainKeys')
    for key, value in patch.items():
        if key.startswith('$setElementOrder/') or key in ('$retainKeys', '$patch'):
            continue
        if key.startswith('$deleteFromPrimitiveList/'):
            field = key.split('/', 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    if retain is not None:
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(field, current, patch):
    if field in MERGE_PRIMITIVES:
        return current + [v for v in patch if v not in current]
    key = _merge_key(field, current + patch)
    if not key or not all(isinstance(i, dict) for i in current + patch):
        return copy.deepcopy([i for i in patch if not (isinstance(i, dict) and i.get('$patch'))])
    if any(isinstance(i, dict) and i.get('$patch') == 'replace' for i in patch):
        return copy.deepcopy([i for i in patch if i.get('$patch') != 'replace'])
    result = copy.deepcopy(current)
    for item in patch:
        index = next((n for n, cur in enumerate(result) if cur.get(key) == item.get(key)), None)
        if item.get('$patch') == 'delete':
            if index is not None:
                del result[index]
        elif index is None:
            result.append(strategic_merge({}, item))
        else:
            result[index] = strategic_merge(result[index], item)
    return result


def removal_patch(previous, applied):
    """Merge patch that sets to null what `previous` (the manager's last apply) had and `applied` dropped."""
    patch = copy.deepcopy(applied)
    if not isinstance(previous, dict) or not isinstance(applied, dict):
        return patch
    for key, value in previous.items():
        if key not in applied:
            patch[key] = None
        elif isinstance(value, dict) and isinstance(applied[key], dict):
            patch[key] = removal_patch(value, applied[key])
    return patch
