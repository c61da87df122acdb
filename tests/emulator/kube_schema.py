"""Structural OpenAPI v3 schema handling for custom resources, as kube-apiserver does it.

Order on every write: prune unknown fields, apply defaults, validate. Errors carry the field path
and a reason from the apiserver's vocabulary (FieldValueRequired, FieldValueNotSupported, ...).
CEL rules (x-kubernetes-validations) are not evaluated.
"""
import re

INT_BOUNDS = {'int32': (-2 ** 31, 2 ** 31 - 1), 'int64': (-2 ** 63, 2 ** 63 - 1)}
TOP_LEVEL = ('apiVersion', 'kind', 'metadata')


def _is_type(value, typ):
    if typ == 'object':
        return isinstance(value, dict)
    if typ == 'array':
        return isinstance(value, list)
    if typ == 'string':
        return isinstance(value, str)
    if typ == 'boolean':
        return isinstance(value, bool)
    if typ == 'integer':
        return isinstance(value, int) and not isinstance(value, bool)
    if typ == 'number':
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


def _join(path, key):
    return '%s.%s' % (path, key) if path else key


def _preserves(schema):
    return bool(schema.get('x-kubernetes-preserve-unknown-fields'))


def prune(schema, value, top=False):
    """Drop fields the schema does not declare (unless x-kubernetes-preserve-unknown-fields)."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        props = schema.get('properties')
        addl = schema.get('additionalProperties')
        for key in list(value):
            if top and key in TOP_LEVEL:
                continue
            if props is not None and key in props:
                value[key] = prune(props[key], value[key])
            elif isinstance(addl, dict):
                value[key] = prune(addl, value[key])
            elif addl is True or _preserves(schema):
                continue
            else:
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get('items'), dict):
        return [prune(schema['items'], item) for item in value]
    return value


def apply_defaults(schema, value):
    """Fill `default` values of absent properties, recursing into objects and arrays."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        for key, sub in (schema.get('properties') or {}).items():
            if key not in value and 'default' in sub:
                value[key] = _copy(sub['default'])
            if key in value:
                value[key] = apply_defaults(sub, value[key])
        addl = schema.get('additionalProperties')
        if isinstance(addl, dict):
            for key in list(value):
                if key not in (schema.get('properties') or {}):
                    value[key] = apply_defaults(addl, value[key])
    elif isinstance(value, list) and isinstance(schema.get('items'), dict):
        return [apply_defaults(schema['items'], item) for item in value]
    return value


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _fmt(value):
    if isinstance(value, str):
        return '"%s"' % value
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def validate(schema, value, path=''):
    """Return a list of causes: dicts with reason, message and field, like metav1.StatusCause."""
    errors = []
    _validate(schema, value, path, errors)
    return errors


def _err(errors, reason, path, message):
    errors.append({'reason': reason, 'message': message, 'field': path})


def _validate(schema, value, path, errors):  # noqa: C901 - one switch over the schema keywords
    if not isinstance(schema, dict):
        return
    if value is None:
        if not schema.get('nullable') and schema.get('type'):
            _err(errors, 'FieldValueTypeInvalid', path, 'Invalid value: "null": %s in body must be of type %s: "null"'
                 % (path, schema.get('type')))
        return
    if schema.get('x-kubernetes-int-or-string'):
        if not (isinstance(value, str) or _is_type(value, 'integer')):
            _err(errors, 'FieldValueTypeInvalid', path, 'Invalid value: %s: %s in body must be of type integer,string'
                 % (_fmt(value), path))
        return
    typ = schema.get('type')
    if typ and not _is_type(value, typ):
        _err(errors, 'FieldValueTypeInvalid', path, 'Invalid value: "%s": %s in body must be of type %s: "%s"'
             % (_json_type(value), path, typ, _json_type(value)))
        return
    if 'enum' in schema and value not in schema['enum']:
        _err(errors, 'FieldValueNotSupported', path, 'Unsupported value: %s: supported values: %s'
             % (_fmt(value), ', '.join('"%s"' % v for v in schema['enum'])))
    if _is_type(value, 'number'):
        _validate_number(schema, value, path, errors)
    if isinstance(value, str):
        _validate_string(schema, value, path, errors)
    if isinstance(value, list):
        if 'minItems' in schema and len(value) < schema['minItems']:
            _err(errors, 'FieldValueInvalid', path, 'Invalid value: %d: %s in body should have at least %d items'
                 % (len(value), path, schema['minItems']))
        if 'maxItems' in schema and len(value) > schema['maxItems']:
            _err(errors, 'TooMany', path, 'Too many: %d: must have at most %d items' % (len(value), schema['maxItems']))
        for index, item in enumerate(value):
            _validate(schema.get('items'), item, '%s[%d]' % (path, index), errors)
        if schema.get('x-kubernetes-list-type') == 'set':
            seen = []
            for index, item in enumerate(value):
                if item in seen:
                    _err(errors, 'FieldValueDuplicate', '%s[%d]' % (path, index), 'Duplicate value: %s' % _fmt(item))
                seen.append(item)
    if isinstance(value, dict):
        _validate_object(schema, value, path, errors)
    for sub in schema.get('allOf') or []:
        _validate(sub, value, path, errors)
    for key in ('anyOf', 'oneOf'):
        if schema.get(key):
            matches = sum(1 for sub in schema[key] if not validate(sub, value, path))
            if matches == 0 or (key == 'oneOf' and matches > 1):
                _err(errors, 'FieldValueInvalid', path, 'Invalid value: %s: %s in body must validate %s schema'
                     % (_fmt(value), path, 'one and only one' if key == 'oneOf' else 'at least one'))


def _json_type(value):
    for name in ('boolean', 'integer', 'number', 'string', 'array', 'object'):
        if _is_type(value, name):
            return name
    return 'null'


def _validate_number(schema, value, path, errors):
    fmt = schema.get('format')
    if fmt in INT_BOUNDS and isinstance(value, int):
        low, high = INT_BOUNDS[fmt]
        if not low <= value <= high:
            _err(errors, 'FieldValueInvalid', path, 'Invalid value: %s: %s in body must be of type %s'
                 % (value, path, fmt))
    if 'minimum' in schema:
        bad = value <= schema['minimum'] if schema.get('exclusiveMinimum') else value < schema['minimum']
        if bad:
            _err(errors, 'FieldValueInvalid', path, 'Invalid value: %s: %s in body should be greater than or equal to %s'
                 % (value, path, schema['minimum']))
    if 'maximum' in schema:
        bad = value >= schema['maximum'] if schema.get('exclusiveMaximum') else value > schema['maximum']
        if bad:
            _err(errors, 'FieldValueInvalid', path, 'Invalid value: %s: %s in body should be less than or equal to %s'
                 % (value, path, schema['maximum']))


def _validate_string(schema, value, path, errors):
    if 'minLength' in schema and len(value) < schema['minLength']:
        _err(errors, 'FieldValueInvalid', path, 'Invalid value: "%s": %s in body should be at least %d chars long'
             % (value, path, schema['minLength']))
    if 'maxLength' in schema and len(value) > schema['maxLength']:
        _err(errors, 'TooLong', path, 'Too long: may not be more than %d bytes' % schema['maxLength'])
    if 'pattern' in schema and not re.search(schema['pattern'], value):
        _err(errors, 'FieldValueInvalid', path, 'Invalid value: "%s": %s in body should match \'%s\''
             % (value, path, schema['pattern']))


def _validate_object(schema, value, path, errors):
    for key in schema.get('required') or []:
        if key not in value:
            _err(errors, 'FieldValueRequired', _join(path, key), 'Required value')
    props = schema.get('properties') or {}
    addl = schema.get('additionalProperties')
    for key, item in value.items():
        if not path and key in TOP_LEVEL:
            continue
        if key in props:
            _validate(props[key], item, _join(path, key), errors)
        elif isinstance(addl, dict):
            _validate(addl, item, _join(path, key), errors)
    if 'minProperties' in schema and len(value) < schema['minProperties']:
        _err(errors, 'FieldValueInvalid', path, 'Invalid value: %d: %s in body should have at least %d properties'
             % (len(value), path, schema['minProperties']))
    if 'maxProperties' in schema and len(value) > schema['maxProperties']:
        _err(errors, 'TooMany', path, 'Too many: %d: must have at most %d items' % (len(value), schema['maxProperties']))


def process(schema, obj):
    """Prune, default and validate a custom resource in place; return the causes (empty when valid)."""
    if not schema:
        return []
    prune(schema, obj, top=True)
    apply_defaults(schema, obj)
    return validate(schema, obj)
