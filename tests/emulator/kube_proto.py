"""Decode the protobuf bodies client-go's typed clients send (helm's release storage writes Secrets
this way): the `k8s\\x00` runtime.Unknown envelope and the v1 Secret, ConfigMap and Namespace
messages. Unknown fields are skipped; responses are always JSON."""
import base64

MAGIC = b'k8s\x00'


class ProtoError(ValueError):
    """Body is not a protobuf message this double understands."""


def _varint(data, pos):
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtoError('truncated varint')
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data):
    """Yield (field number, wire type, value) for one message; length-delimited values are bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ProtoError('unsupported wire type %d' % wire)
        yield number, wire, value


def _map_entry(data):
    key = value = None
    for number, _wire, item in fields(data):
        if number == 1:
            key = item.decode()
        elif number == 2:
            value = item
    return key, value if value is not None else b''


def _owner(data):
    names = {1: 'kind', 3: 'name', 4: 'uid', 5: 'apiVersion'}
    out = {}
    for number, _wire, value in fields(data):
        if number in names:
            out[names[number]] = value.decode()
        elif number == 6:
            out['controller'] = bool(value)
        elif number == 7:
            out['blockOwnerDeletion'] = bool(value)
    return out


def object_meta(data):
    strings = {1: 'name', 2: 'generateName', 3: 'namespace', 5: 'uid', 6: 'resourceVersion'}
    meta = {}
    for number, _wire, value in fields(data):
        if number in strings:
            if value:
                meta[strings[number]] = value.decode()
        elif number == 7:
            meta['generation'] = value
        elif number in (11, 12):
            key, item = _map_entry(value)
            meta.setdefault('labels' if number == 11 else 'annotations', {})[key] = item.decode()
        elif number == 13:
            meta.setdefault('ownerReferences', []).append(_owner(value))
        elif number == 14:
            meta.setdefault('finalizers', []).append(value.decode())
    return meta


def _secret(data):
    obj = {'apiVersion': 'v1', 'kind': 'Secret'}
    for number, _wire, value in fields(data):
        if number == 1:
            obj['metadata'] = object_meta(value)
        elif number == 2:
            key, item = _map_entry(value)
            obj.setdefault('data', {})[key] = base64.b64encode(item).decode()
        elif number == 3:
            obj['type'] = value.decode()
        elif number == 4:
            key, item = _map_entry(value)
            obj.setdefault('stringData', {})[key] = item.decode()
        elif number == 5:
            obj['immutable'] = bool(value)
    return obj


def _configmap(data):
    obj = {'apiVersion': 'v1', 'kind': 'ConfigMap'}
    for number, _wire, value in fields(data):
        if number == 1:
            obj['metadata'] = object_meta(value)
        elif number == 2:
            key, item = _map_entry(value)
            obj.setdefault('data', {})[key] = item.decode()
        elif number == 3:
            key, item = _map_entry(value)
            obj.setdefault('binaryData', {})[key] = base64.b64encode(item).decode()
        elif number == 4:
            obj['immutable'] = bool(value)
    return obj


def _namespace(data):
    obj = {'apiVersion': 'v1', 'kind': 'Namespace'}
    for number, _wire, value in fields(data):
        if number == 1:
            obj['metadata'] = object_meta(value)
    return obj


DECODERS = {'Secret': _secret, 'ConfigMap': _configmap, 'Namespace': _namespace}


def decode(body):
    """runtime.Unknown envelope -> JSON-like dict; raises ProtoError for kinds not handled."""
    if not body.startswith(MAGIC):
        raise ProtoError('missing protobuf envelope')
    kind = raw = None
    for number, _wire, value in fields(body[len(MAGIC):]):
        if number == 1:
            for tnum, _tw, tval in fields(value):
                if tnum == 2:
                    kind = tval.decode()
        elif number == 2:
            raw = value
    if kind not in DECODERS:
        raise ProtoError('protobuf bodies of kind %s are not understood (send JSON)' % kind)
    return DECODERS[kind](raw or b'')
