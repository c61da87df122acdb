"""Client factory: endpoints, settings validation, query flattening, lazy SDK import, credentials."""
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils import client
from ansible_collections.underlay.alicloud.plugins.module_utils.client import (
    AlicloudClients, default_endpoint, flatten_query, parse_endpoint, validate_region)


COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(client.__file__), '..', '..', '..', '..', '..'))


@pytest.mark.parametrize('service,region,host', [
    ('ecs', 'cn-hangzhou', 'ecs-cn-hangzhou.aliyuncs.com'), ('ecs', 'cn-beijing', 'ecs.cn-beijing.aliyuncs.com'),
    ('ecs', 'ap-southeast-1', 'ecs.ap-southeast-1.aliyuncs.com'), ('vpc', 'cn-hangzhou', 'vpc.aliyuncs.com'),
    ('vpc', 'cn-shanghai', 'vpc.cn-shanghai.aliyuncs.com'), ('ecs', 'cn-north-2-gov-1', 'ecs.aliyuncs.com'),
])
def test_default_endpoints(service, region, host):
    assert default_endpoint(service, region) == host


@pytest.mark.parametrize('value,expected', [
    ('http://127.0.0.1:8080', ('127.0.0.1:8080', 'http')), ('http://127.0.0.1:8080/', ('127.0.0.1:8080', 'http')),
    ('https://ecs.cn-beijing.aliyuncs.com', ('ecs.cn-beijing.aliyuncs.com', 'https')),
    ('ecs-vpc.cn-beijing.aliyuncs.com', ('ecs-vpc.cn-beijing.aliyuncs.com', 'https')),
    ('HTTP://localhost:1', ('localhost:1', 'http')), ('http://[::1]:8080', ('[::1]:8080', 'http')),
])
def test_parse_endpoint(value, expected):
    assert parse_endpoint(value) == expected


@pytest.mark.parametrize('value', ['ftp://host', 'http://', 'http://host/path', 'host name', ''])
def test_parse_endpoint_rejects(value):
    with pytest.raises(ValueError, match='endpoint'):
        parse_endpoint(value)


def test_validate_region():
    assert validate_region('cn-hangzhou') == 'cn-hangzhou'
    for bad in ('cn_hangzhou', 'Hangzhou', 'cn-', '', None, 'cn-hangzhou; rm'):
        with pytest.raises(ValueError, match='region'):
            validate_region(bad)


def test_flatten_query():
    assert flatten_query({'Tag': [{'Key': 'a', 'Value': 'b'}], 'NetworkInterfaceId': ['eni-1', 'eni-2'],
                          'DryRun': False, 'Count': 3, 'Skip': None, 'InstanceIds': '["i-1"]'}) == {
        'Tag.1.Key': 'a', 'Tag.1.Value': 'b', 'NetworkInterfaceId.1': 'eni-1', 'NetworkInterfaceId.2': 'eni-2',
        'DryRun': 'false', 'Count': '3', 'InstanceIds': '["i-1"]'}


def test_settings_validation_and_defaults(monkeypatch):
    monkeypatch.delenv('ALIBABA_CLOUD_ECS_ENDPOINT', raising=False)
    monkeypatch.setenv('ALIBABA_CLOUD_VPC_ENDPOINT', 'http://127.0.0.1:9999')
    clients = AlicloudClients({'region': 'cn-hangzhou', 'max_retries': 2, 'timeout': 3, 'profile': ''})
    assert clients.retry.max_attempts == 3 and clients.timeout == 3
    assert clients.endpoint('ecs', 'cn-beijing') == ('ecs.cn-beijing.aliyuncs.com', 'https')
    assert clients.endpoint('vpc', 'cn-beijing') == ('127.0.0.1:9999', 'http')
    with pytest.raises(ValueError, match='together'):
        AlicloudClients({'access_key_id': 'x'})
    with pytest.raises(ValueError, match='timeout'):
        AlicloudClients({'timeout': 0})
    with pytest.raises(ValueError, match='max_retries'):
        AlicloudClients({'max_retries': -1})
    with pytest.raises(ValueError, match='endpoint'):
        AlicloudClients({'ecs_endpoint': 'ftp://x'})
    with pytest.raises(ValueError, match='region'):
        clients.ecs('not a region')


def test_secrets_known_for_redaction(monkeypatch):
    monkeypatch.setenv('ALIBABA_CLOUD_SECURITY_TOKEN', 'env-token-123')
    clients = AlicloudClients({'access_key_id': 'id', 'access_key_secret': 'sec-456'})
    assert set(clients.secrets) >= {'sec-456', 'env-token-123'}


def test_importing_module_utils_does_not_import_the_sdk():
    code = ('import sys; sys.path.insert(0, %r)\n'
            'from ansible_collections.underlay.alicloud.plugins.module_utils import client, ecs, gather, module, facts\n'
            'c = client.AlicloudClients({"region": "cn-hangzhou"})\n'
            'print(sorted(m for m in sys.modules if m.startswith(("alibabacloud", "darabonba", "Tea"))))'
            % COLLECTIONS)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True, cwd='/')
    assert out.stdout.strip() == '[]'


@pytest.mark.skipif(not client.HAS_ALIBABA_SDK, reason='Alibaba SDK not installed')
def test_credential_providers_per_setting(monkeypatch):
    providers = pytest.importorskip('alibabacloud_credentials.provider')
    built = AlicloudClients({'access_key_id': 'id', 'access_key_secret': 'sec'})._build_credential()
    assert isinstance(built.cloud_credential.provider, providers.StaticAKCredentialsProvider)
    built = AlicloudClients({'access_key_id': 'id', 'access_key_secret': 'sec', 'security_token': 'tok'})._build_credential()
    assert isinstance(built.cloud_credential.provider, providers.StaticSTSCredentialsProvider)
    assert built.get_credential().security_token == 'tok'
    built = AlicloudClients({})._build_credential()
    assert isinstance(built.cloud_credential.provider, providers.DefaultCredentialsProvider)
    built = AlicloudClients({'access_key_id': 'id', 'access_key_secret': 'sec', 'role_arn': 'acs:ram::1:role/r'})._build_credential()
    assert isinstance(built.cloud_credential.provider, providers.RamRoleArnCredentialsProvider)


@pytest.mark.skipif(not client.HAS_ALIBABA_SDK, reason='Alibaba SDK not installed')
def test_sdk_client_uses_host_port_and_http():
    clients = AlicloudClients({'region': 'cn-hangzhou', 'access_key_id': 'id', 'access_key_secret': 'sec',
                               'ecs_endpoint': 'http://127.0.0.1:8080', 'timeout': 7})
    sdk = clients.ecs('cn-beijing')
    assert (sdk._endpoint, sdk._protocol, sdk._region_id, sdk._read_timeout) == ('127.0.0.1:8080', 'http', 'cn-beijing', 7000)
    assert clients.ecs('cn-beijing') is sdk and clients.vpc('cn-beijing') is not sdk
    assert clients.vpc('cn-hangzhou')._endpoint == 'vpc.aliyuncs.com' and clients.vpc('cn-hangzhou')._protocol == 'https'


@pytest.mark.skipif(not client.HAS_ALIBABA_SDK, reason='Alibaba SDK not installed')
def test_named_cli_profile(monkeypatch, tmp_path):
    pytest.importorskip('alibabacloud_credentials.provider')
    (tmp_path / '.aliyun').mkdir()
    (tmp_path / '.aliyun' / 'config.json').write_text(json.dumps({'current': 'other', 'profiles': [
        {'name': 'other', 'mode': 'AK', 'access_key_id': 'wrong', 'access_key_secret': 'wrong'},
        {'name': 'lab', 'mode': 'AK', 'access_key_id': 'LTAIprofile', 'access_key_secret': 'profile-secret'}]}))
    monkeypatch.setenv('HOME', str(tmp_path))
    credential = AlicloudClients({'profile': 'lab'})._build_credential().get_credential()
    assert (credential.access_key_id, credential.access_key_secret) == ('LTAIprofile', 'profile-secret')
