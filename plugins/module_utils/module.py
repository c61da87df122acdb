# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Base class for the collection's modules (hetzner.hcloud style).

A module subclass sets ``represent`` (its result key) and implements ``define_module()`` (the
AnsibleModule) and ``run()``; ``main()`` is ``Subclass(Subclass.define_module()).execute()``.
The base merges the shared auth options, checks for the SDK only when an API call is about to be
made, builds ``.clients`` lazily, and turns API errors into one-line failures without secrets.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.underlay.alicloud.plugins.module_utils.client import (
    DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, HAS_ALIBABA_SDK, MISSING_SDK_PACKAGE, SDK_REQUIREMENT,
    AlicloudClients, parse_endpoint, validate_region)
from ansible_collections.underlay.alicloud.plugins.module_utils.errors import AlicloudApiError, redact
from ansible_collections.underlay.alicloud.plugins.module_utils.retry import NO_ANSWER_CODES
from ansible_collections.underlay.alicloud.plugins.module_utils.filters import check_filters

AUTH_ARGUMENT_SPEC = dict(
    region=dict(type='str', fallback=(env_fallback, ['ALIBABA_CLOUD_REGION_ID'])),
    access_key_id=dict(type='str'),
    access_key_secret=dict(type='str', no_log=True),
    security_token=dict(type='str', no_log=True),
    role_arn=dict(type='str'),
    role_session_name=dict(type='str'),
    profile=dict(type='str'),
    ecs_endpoint=dict(type='str'),
    vpc_endpoint=dict(type='str'),
    timeout=dict(type='int', default=DEFAULT_TIMEOUT),
    max_retries=dict(type='int', default=DEFAULT_MAX_RETRIES),
)

# Resource id prefixes checked before any API call: a typo fails fast and names the value.
ID_PREFIXES = {'instance': 'i-', 'eni': 'eni-', 'vswitch': 'vsw-', 'vpc': 'vpc-'}
_ID_RE = re.compile(r'^[a-z]+-[A-Za-z0-9]+$')


def client_token(*material):
    """A ClientToken (64 hex characters, the API's limit) derived from ``material``."""
    return hashlib.sha256('|'.join(str(part) for part in material).encode('utf-8')).hexdigest()


def auth_settings(params):
    """The shared auth/endpoint options of ``params`` as AlicloudClients settings."""
    return dict((key, params.get(key)) for key in AUTH_ARGUMENT_SPEC)


class AlicloudModule:
    """Common behaviour of the collection's modules; subclasses define ``represent`` and ``run``."""

    represent = None

    def __init__(self, module):
        self.module = module
        self._clients = None
        self.result = {'changed': False}
        # Part of every per-run ClientToken: the retries of one run share it, a new run never does,
        # so the API cannot answer a new intent with the replay of an older, identical-looking one.
        self.run_nonce = uuid.uuid4().hex

    @classmethod
    def argument_spec(cls, **spec):
        """The shared auth options merged with the module's own ``spec``."""
        merged = dict(AUTH_ARGUMENT_SPEC)
        merged.update(spec)
        return merged

    @classmethod
    def define_module(cls):
        """Return the AnsibleModule of the subclass."""
        raise NotImplementedError

    @property
    def clients(self):
        """AlicloudClients for the module's options; fails cleanly when the SDK is missing."""
        if self._clients is None:
            if not HAS_ALIBABA_SDK:
                self.module.fail_json(msg=missing_required_lib(SDK_REQUIREMENT),
                                      exception='No module named %r' % MISSING_SDK_PACKAGE)
            try:
                self._clients = AlicloudClients(auth_settings(self.module.params))
            except ValueError as exc:
                self.fail(str(exc))
        return self._clients

    @property
    def region(self):
        """The validated ``region`` option (required by every module that talks to a region)."""
        region = self.module.params.get('region')
        if not region:
            self.fail('region is required: set the region option or ALIBABA_CLOUD_REGION_ID')
        return region

    def validate_common(self):
        """Fail fast, before any API call, on malformed shared options."""
        params = self.module.params
        try:
            if params.get('region'):
                validate_region(params['region'])
            for key in ('ecs_endpoint', 'vpc_endpoint'):
                if params.get(key):
                    parse_endpoint(params[key])
        except ValueError as exc:
            self.fail(str(exc))
        if params.get('timeout') is not None and params['timeout'] < 1:
            self.fail('timeout must be a positive number of seconds, got %s' % params['timeout'])
        if params.get('max_retries') is not None and params['max_retries'] < 0:
            self.fail('max_retries must be 0 or more, got %s' % params['max_retries'])
        if bool(params.get('access_key_id')) != bool(params.get('access_key_secret')):
            self.fail('access_key_id and access_key_secret must be given together')

    def validate_ids(self, option, kind, values):
        """Fail unless every id in ``values`` looks like ``<prefix><suffix>`` for ``kind``."""
        prefix = ID_PREFIXES[kind]
        for value in values or []:
            if not isinstance(value, str) or not value.startswith(prefix) or not _ID_RE.match(value):
                self.fail('%s: %r is not a valid %s id (expected %s followed by letters and digits)'
                          % (option, value, kind, prefix))

    def build_filters(self, action, **options):
        """The ``filters`` option, checked against the request parameters of ``action``, merged with
        API parameters from dedicated options (those win).

        ``options`` maps API parameter names to option values; unset values are ignored and a
        ``Tag`` mapping becomes the API's ``[{Key, Value}]`` list.
        """
        filters = dict(self.module.params.get('filters') or {})
        check_filters(action, filters)  # its ValueError becomes the module's failure in execute()
        for key, value in options.items():
            if value not in (None, [], {}, ''):
                filters[key] = value
        if isinstance(filters.get('Tag'), dict):
            filters['Tag'] = [{'Key': k, 'Value': v} for k, v in sorted(filters['Tag'].items())]
        return filters

    def warn_missing(self, option, requested, found):
        """Warn about ids asked for in ``option`` that the API did not return."""
        missing = sorted(set(requested or []) - set(found))
        if missing:
            self.module.warn('%s: not found in region %s (or excluded by the other filters): %s'
                             % (option, self.module.params.get('region'), ', '.join(missing)))

    def write(self, func, *args, **kwargs):
        """Call one mutating API function of module_utils.ecs; from then on the run reports changed.

        A write that got no answer (dropped connection, read timeout, after all retries) may have
        run, so it counts as a change too.
        """
        try:
            response = func(self.clients, *args, **kwargs)
        except AlicloudApiError as err:
            if err.code in NO_ANSWER_CODES:
                self.result['changed'] = True
            raise
        self.result['changed'] = True
        return response

    def fail(self, msg, **kwargs):
        """Fail the module with a one-line message free of secrets; ``changed`` tells whether a write happened."""
        secrets = [self.module.params.get('access_key_secret'), self.module.params.get('security_token'),
                   os.environ.get('ALIBABA_CLOUD_ACCESS_KEY_SECRET'), os.environ.get('ALIBABA_CLOUD_SECURITY_TOKEN')]
        kwargs.setdefault('changed', self.result.get('changed', False))
        self.module.fail_json(msg=redact(msg, secrets), **kwargs)

    def fail_on_api_error(self, err):
        """Fail with the one-line API error and a structured ``error`` dict."""
        self.fail(str(err), error=err.to_dict())

    def run(self):
        """Do the module's work and fill ``self.result``."""
        raise NotImplementedError

    def execute(self):
        """Validate, run, and exit with ``self.result``; API errors become clean failures."""
        self.validate_common()
        try:
            self.run()
        except AlicloudApiError as err:
            self.fail_on_api_error(err)
        except ValueError as exc:  # bad values found while building a request or reading a response
            self.fail(str(exc))
        self.module.exit_json(**self.result)

    @classmethod
    def create_module(cls, spec, **kwargs):
        """AnsibleModule with the merged argument spec; info modules pass supports_check_mode."""
        return AnsibleModule(argument_spec=cls.argument_spec(**spec), **kwargs)
