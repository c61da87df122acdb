# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alibaba Cloud client factory: credentials, endpoints, timeouts and the retry policy.

This is the only place that imports the Alibaba SDK, and it does so lazily: importing the SDK
costs about 0.4 s, which a task that makes no API call (bad input, check of a cached inventory)
must not pay. ``HAS_ALIBABA_SDK`` is computed without importing anything.

Calls go through tea-openapi's generic ``call_api`` (RPC style, ACS3 signature); responses are
the plain wire dicts, so no product-specific model classes need to be loaded.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import threading

from ansible_collections.underlay.alicloud.plugins.module_utils.errors import AlicloudApiError, from_sdk_exception
from ansible_collections.underlay.alicloud.plugins.module_utils.retry import AlicloudRetry

SDK_PACKAGES = ('alibabacloud_tea_openapi', 'alibabacloud_credentials', 'darabonba')
SDK_REQUIREMENT = 'alibabacloud-tea-openapi and alibabacloud-credentials (pip install alibabacloud-ecs20140526 alibabacloud-vpc20160428)'


def _sdk_missing():
    for name in SDK_PACKAGES:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):
            return name
    return None


MISSING_SDK_PACKAGE = _sdk_missing()
HAS_ALIBABA_SDK = MISSING_SDK_PACKAGE is None

API_VERSIONS = {'ecs': '2014-05-26', 'vpc': '2016-04-28'}
ENDPOINT_ENV = {'ecs': 'ALIBABA_CLOUD_ECS_ENDPOINT', 'vpc': 'ALIBABA_CLOUD_VPC_ENDPOINT'}

# Regions whose endpoint does not follow <product>.<region>.aliyuncs.com (from the SDK's tables).
_ECS_SPECIAL = {
    'cn-hangzhou': 'ecs-cn-hangzhou.aliyuncs.com',
    'cn-shanghai-finance-1': 'ecs-cn-hangzhou.aliyuncs.com',
    'cn-shenzhen-finance-1': 'ecs-cn-hangzhou.aliyuncs.com',
    'cn-fujian': 'ecs-cn-hangzhou.aliyuncs.com',
    'cn-north-2-gov-1': 'ecs.aliyuncs.com',
    'cn-beijing-gov-1': 'ecs.aliyuncs.com',
    'cn-beijing-finance-pop': 'ecs.aliyuncs.com',
    'cn-hangzhou-finance': 'ecs.aliyuncs.com',
    'cn-hongkong-finance-pop': 'ecs.aliyuncs.com',
    'cn-wuhan': 'ecs.aliyuncs.com',
    'cn-zhangbei': 'ecs.aliyuncs.com',
    'ap-northeast-2-pop': 'ecs.aliyuncs.com',
    'rus-west-1-pop': 'ecs.aliyuncs.com',
}
_VPC_SPECIAL = dict((region, 'vpc.aliyuncs.com') for region in _ECS_SPECIAL)

REGION_RE = re.compile(r'^[a-z]{2,}(-[a-z0-9]+)+$')
_HOSTPORT_RE = re.compile(r'^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?$')

DEFAULT_TIMEOUT = 10
DEFAULT_MAX_RETRIES = 8
# All attempts of one API call stop after this many seconds, whatever max_retries says.
RETRY_BUDGET_SECONDS = 60.0


def default_endpoint(service, region):
    """Public endpoint host of ``service`` ('ecs' or 'vpc') in ``region``."""
    special = _ECS_SPECIAL if service == 'ecs' else _VPC_SPECIAL
    return special.get(region) or '%s.%s.aliyuncs.com' % (service, region)


def parse_endpoint(value):
    """Split an endpoint override into ``(host[:port], protocol)``.

    ``http://h:p`` selects plain HTTP, ``https://h`` or a bare host selects HTTPS. The SDK wants
    the scheme separately: a scheme inside its ``endpoint`` ends up in the signed Host header.
    """
    text = str(value).strip()
    protocol = 'https'
    match = re.match(r'^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$', text)
    if match:
        protocol = match.group(1).lower()
        text = match.group(2)
        if protocol not in ('http', 'https'):
            raise ValueError('endpoint %r: scheme must be http:// or https://' % (value,))
    text = text.rstrip('/')
    if not _HOSTPORT_RE.match(text):
        raise ValueError('endpoint %r is not a URL like http://127.0.0.1:8080 or a host name like ecs.cn-beijing.aliyuncs.com' % (value,))
    return text, protocol


def validate_region(region):
    """Raise ValueError unless ``region`` looks like an Alibaba region id (e.g. cn-hangzhou)."""
    if not isinstance(region, str) or not REGION_RE.match(region):
        raise ValueError('region %r is not a region id like cn-hangzhou or ap-southeast-1' % (region,))
    return region


class AlicloudClients:
    """Per-region ECS and VPC clients built from the shared option names.

    ``settings`` keys: region, access_key_id, access_key_secret, security_token, role_arn,
    role_session_name, profile, ecs_endpoint, vpc_endpoint, timeout, max_retries. Missing keys
    mean "not set". Clients are created on first use, cached and safe to share between threads.
    """

    def __init__(self, settings=None, retry=None):
        self.settings = dict((k, v) for k, v in (settings or {}).items() if v not in (None, ''))
        self.region = self.settings.get('region')
        self.timeout = int(self.settings.get('timeout', DEFAULT_TIMEOUT))
        max_retries = int(self.settings.get('max_retries', DEFAULT_MAX_RETRIES))
        if self.timeout < 1:
            raise ValueError('timeout must be a positive number of seconds, got %r' % (self.settings['timeout'],))
        if max_retries < 0:
            raise ValueError('max_retries must be 0 or more, got %r' % (self.settings['max_retries'],))
        if bool(self.settings.get('access_key_id')) != bool(self.settings.get('access_key_secret')):
            raise ValueError('access_key_id and access_key_secret must be given together')
        self.retry = retry or AlicloudRetry(max_attempts=max_retries + 1, max_total=RETRY_BUDGET_SECONDS)
        self.endpoints = {}
        for service in API_VERSIONS:
            override = self.settings.get('%s_endpoint' % service) or os.environ.get(ENDPOINT_ENV[service])
            self.endpoints[service] = parse_endpoint(override) if override else None
        self._lock = threading.Lock()
        self._clients = {}
        self._credential = None

    @property
    def secrets(self):
        """Literal secret values to redact from any text shown to the user."""
        values = [self.settings.get('access_key_secret'), self.settings.get('security_token'),
                  os.environ.get('ALIBABA_CLOUD_ACCESS_KEY_SECRET'), os.environ.get('ALIBABA_CLOUD_SECURITY_TOKEN')]
        return tuple(v for v in values if v)

    def endpoint(self, service, region):
        """``(host[:port], protocol)`` used for ``service`` in ``region``."""
        return self.endpoints[service] or (default_endpoint(service, region), 'https')

    def ecs(self, region=None):
        """tea-openapi client bound to the ECS endpoint of ``region``."""
        return self._client('ecs', region or self.region)

    def vpc(self, region=None):
        """tea-openapi client bound to the VPC endpoint of ``region``."""
        return self._client('vpc', region or self.region)

    def _client(self, service, region):
        validate_region(region)
        key = (service, region)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self._build(service, region)
            return client

    def _build(self, service, region):
        from alibabacloud_tea_openapi.client import Client  # pylint: disable=import-outside-toplevel
        from alibabacloud_tea_openapi import models as open_api_models  # pylint: disable=import-outside-toplevel

        _quiet_sdk_loggers()

        host, protocol = self.endpoint(service, region)
        if self._credential is None:
            self._credential = self._build_credential()
        config = open_api_models.Config(
            credential=self._credential, endpoint=host, protocol=protocol, region_id=region,
            connect_timeout=min(self.timeout, 5) * 1000, read_timeout=self.timeout * 1000,
            user_agent='underlay.alicloud')
        return Client(config)

    def _build_credential(self):
        """Credentials client: explicit keys, else a named profile, else the SDK default chain."""
        # pylint: disable=import-outside-toplevel
        from alibabacloud_credentials.client import Client as CredentialClient
        from alibabacloud_credentials import provider as providers

        s = self.settings
        if s.get('access_key_id'):
            if s.get('security_token'):
                base = providers.StaticSTSCredentialsProvider(
                    access_key_id=s['access_key_id'], access_key_secret=s['access_key_secret'], security_token=s['security_token'])
            else:
                base = providers.StaticAKCredentialsProvider(access_key_id=s['access_key_id'], access_key_secret=s['access_key_secret'])
        elif s.get('profile'):
            cli_config = os.path.join(os.path.expanduser('~'), '.aliyun', 'config.json')
            if os.path.isfile(cli_config):
                base = providers.CLIProfileCredentialsProvider(profile_name=s['profile'], profile_file=cli_config)
            else:
                base = providers.ProfileCredentialsProvider(profile_name=s['profile'])
        else:
            base = providers.DefaultCredentialsProvider()
        if s.get('role_arn'):
            base = providers.RamRoleArnCredentialsProvider(
                credentials_provider=base, role_arn=s['role_arn'],
                role_session_name=s.get('role_session_name') or 'underlay-alicloud')
        return CredentialClient(provider=base)

    def call(self, service, region, action, query=None):
        """One RPC call (no retry) returning the response body dict; raises AlicloudApiError."""
        from alibabacloud_tea_openapi import models as open_api_models  # pylint: disable=import-outside-toplevel
        from darabonba.runtime import RuntimeOptions  # pylint: disable=import-outside-toplevel

        client = self._client(service, region)
        params = open_api_models.Params(
            action=action, version=API_VERSIONS[service], protocol='HTTPS', pathname='/', method='POST',
            auth_type='AK', style='RPC', req_body_type='formData', body_type='json')
        request = open_api_models.OpenApiRequest(query=flatten_query(query or {}))
        try:
            response = client.call_api(params, request, RuntimeOptions())
        except Exception as exc:  # pylint: disable=broad-except
            raise from_sdk_exception(exc, action, secrets=self.secrets, endpoint=self.endpoint(service, region)[0]) from None
        body = response.get('body') if isinstance(response, dict) else None
        if not isinstance(body, dict):
            raise AlicloudApiError(action, 'InvalidResponse', 'expected a JSON object, got %s' % type(body).__name__)
        return body


def _quiet_sdk_loggers():
    """Silence the SDK's own stderr handlers.

    darabonba-core dumps every request header (security token included) at DEBUG when DEBUG=sdk is
    set, and the credentials chain prints tracebacks for each provider it tries; failures reach the
    user through AlicloudApiError instead.
    """
    logging.getLogger('darabonba-core').setLevel(logging.WARNING)
    logging.getLogger('credentials').setLevel(logging.CRITICAL)


def flatten_query(params):
    """Flatten nested request parameters the way RPC APIs expect them.

    ``{"Tag": [{"Key": "a", "Value": "b"}], "NetworkInterfaceId": ["eni-1"], "DryRun": False}``
    becomes ``{"Tag.1.Key": "a", "Tag.1.Value": "b", "NetworkInterfaceId.1": "eni-1", "DryRun": "false"}``.
    """
    out = {}

    def walk(prefix, value):
        if value is None:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                walk('%s.%s' % (prefix, key) if prefix else str(key), item)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value, 1):
                walk('%s.%d' % (prefix, index), item)
        elif isinstance(value, bool):
            out[prefix] = 'true' if value else 'false'
        else:
            out[prefix] = str(value)

    walk('', params)
    return out
