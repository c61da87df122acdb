# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strict validators built from the real Spiderpool CRD schemas (the 1.2.2 chart of the pinned module,
fetched into .cache/realkube by `make env`).

The CRDs' openAPIV3Schema does not forbid unknown fields (the API server prunes them); for our
objects an unknown field is a bug, so every object schema is closed with
``additionalProperties: false`` unless it preserves unknown fields.
"""
import copy
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CRD_DIR = os.environ.get('SPIDERPOOL_CRD_DIR', os.path.join(ROOT, '.cache', 'realkube', 'spiderpool-chart', 'crds'))


def _close(schema):
    if isinstance(schema, dict):
        if schema.get('type') == 'object' and 'properties' in schema and not schema.get('x-kubernetes-preserve-unknown-fields'):
            schema.setdefault('additionalProperties', False)
        for value in schema.values():
            _close(value)
    elif isinstance(schema, list):
        for value in schema:
            _close(value)
    return schema


def available():
    try:
        import jsonschema  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        return False
    return os.path.isdir(CRD_DIR)


def validators():
    """{kind: jsonschema validator} for the served version of every CRD; skip the test when absent."""
    if not available():
        pytest.skip('Spiderpool CRDs (%s) or jsonschema not available' % CRD_DIR)
    import jsonschema  # pylint: disable=import-outside-toplevel
    out = {}
    for name in sorted(os.listdir(CRD_DIR)):
        if not name.startswith('spiderpool.spidernet.io_') or not name.endswith('.yaml'):
            continue  # the chart's CRD folder also carries multus' and the SR-IOV operator's
        with open(os.path.join(CRD_DIR, name)) as handle:
            crd = yaml.safe_load(handle)
        for version in crd['spec']['versions']:
            if version.get('served'):
                schema = _close(copy.deepcopy(version['schema']['openAPIV3Schema']))
                schema['properties']['apiVersion'] = {'type': 'string', 'enum': ['%s/%s' % (crd['spec']['group'], version['name'])]}
                schema['properties']['kind'] = {'type': 'string', 'enum': [crd['spec']['names']['kind']]}
                schema['required'] = sorted(set(schema.get('required', [])) | {'apiVersion', 'kind', 'metadata', 'spec'})
                out[crd['spec']['names']['kind']] = jsonschema.Draft7Validator(schema)
    return out


def assert_valid(objects):
    """Every object validates against its CRD (the error names the object and the field).

    Without the CRDs this checks nothing, so that the test's other assertions still count;
    ``test_planner.py::test_objects_validate_against_the_real_crds`` is the test that skips.
    """
    if not available():
        return
    checks = validators()
    for obj in objects:
        errors = sorted(checks[obj['kind']].iter_errors(obj), key=lambda e: list(e.path))
        assert not errors, '%s/%s: %s at %s' % (obj['kind'], obj['metadata']['name'], errors[0].message, list(errors[0].path))
