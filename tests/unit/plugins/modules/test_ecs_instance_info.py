"""ecs_instance_info: option validation before any API call, and results from hand-written wire data."""
import json

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.underlay.alicloud.plugins.module_utils import module as module_base
from ansible_collections.underlay.alicloud.plugins.modules import ecs_instance_info
from ansible_collections.underlay.alicloud.tests.unit.plugins.module_utils.fake_api import (
    FakeClients, eni, instance, itype, vswitch)

SECRET = 'Sup3rSecretValue'


def world():
    return {'cn-hangzhou': {
        'instances': [instance('i-bp1master', tags={'cluster': 'lab'}, enis=['eni-m0']), instance('i-bp1other', vpc='vpc-2')],
        'enis': [eni('eni-m1', 'i-bp1master', vswitch='vsw-b', eni_type='Secondary', index=1, primary='192.168.0.151',
                     secondary=['192.168.0.160', '192.168.0.156']),
                 eni('eni-m0', 'i-bp1master', primary='172.31.199.183')],
        'vswitches': [vswitch('vsw-a', '172.31.192.0/20'), vswitch('vsw-b', '192.168.0.0/24')],
        'types': [itype('ecs.g7.large')],
    }}


def run_module(mod, args, capsys, monkeypatch, clients=None):
    """Run ``mod.main()`` with ``args``; returns (result dict with the warnings as strings, fake clients).

    Warnings are recorded directly: where they end up (result or display) depends on what else
    the test process has imported.
    """
    fake = clients or FakeClients(world())
    warnings = []
    monkeypatch.setattr(module_base, 'AlicloudClients', lambda settings: fake)
    monkeypatch.setattr(AnsibleModule, 'warn', lambda self, msg: warnings.append(msg))
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            mod.main()
    result = json.loads(capsys.readouterr().out)
    result['warnings'] = warnings
    return result, fake


@pytest.mark.parametrize('args,message', [
    ({'region': 'cn_hangzhou'}, "region 'cn_hangzhou' is not a region id"),
    ({'region': 'cn-hangzhou', 'instance_ids': ['i-ok1', 'eni-123']}, "instance_ids: 'eni-123' is not a valid instance id"),
    ({'region': 'cn-hangzhou', 'vpc_id': 'vsw-1'}, "vpc_id: 'vsw-1' is not a valid vpc id"),
    ({'region': 'cn-hangzhou', 'timeout': 0}, 'timeout must be a positive number of seconds, got 0'),
    ({'region': 'cn-hangzhou', 'max_retries': -2}, 'max_retries must be 0 or more, got -2'),
    ({'region': 'cn-hangzhou', 'filters': {'MaxResults': 5}}, 'filters: MaxResults is set by the collection itself (every page is read); remove it'),
    ({'region': 'cn-hangzhou', 'filters': {'vpc_id': 'x'}},
     "filters: unknown DescribeInstances parameter 'vpc_id' (did you mean 'VpcId'?)"),
    ({'region': 'cn-hangzhou', 'filters': {'Tags': [{'Key': 'cluster', 'Value': 'lab'}]}},
     "filters: unknown DescribeInstances parameter 'Tags' (did you mean 'Tag'?)"),
    ({'region': 'cn-hangzhou', 'ecs_endpoint': 'ftp://x'}, "endpoint 'ftp://x'"),
    ({'region': 'cn-hangzhou', 'access_key_id': 'AKID'}, 'access_key_id and access_key_secret must be given together'),
    ({}, 'region is required'),
])
def test_bad_input_fails_before_any_call(args, message, capsys, monkeypatch):
    monkeypatch.delenv('ALIBABA_CLOUD_REGION_ID', raising=False)
    result, fake = run_module(ecs_instance_info, args, capsys, monkeypatch)
    assert result['failed'] and message in result['msg'] and '\n' not in result['msg']
    assert fake.requests == []


def test_non_integer_option_is_rejected(capsys, monkeypatch):
    result, fake = run_module(ecs_instance_info, {'region': 'cn-hangzhou', 'max_retries': 'many'}, capsys, monkeypatch)
    assert result['failed'] and 'max_retries' in result['msg'] and fake.requests == []


def test_instances_as_host_facts(capsys, monkeypatch):
    result, fake = run_module(ecs_instance_info, {'region': 'cn-hangzhou', 'tags': {'cluster': 'lab'}, 'vpc_id': 'vpc-1',
                                                  'filters': {'VpcId': 'vpc-ignored', 'InstanceType': 'ecs.g7.large'}},
                              capsys, monkeypatch)
    assert result['changed'] is False
    (host,) = result['instances']
    assert host['alicloud_instance_id'] == 'i-bp1master' and host['alicloud_provider_id'] == 'cn-hangzhou.i-bp1master'
    assert [e['id'] for e in host['alicloud_enis']] == ['eni-m0', 'eni-m1']
    assert host['alicloud_enis'][1]['secondary_ips'] == ['192.168.0.156', '192.168.0.160']
    assert host['alicloud_eni_quota'] == {'enis': 3, 'ipv4_per_eni': 6, 'ipv6_per_eni': 6}
    query = fake.calls('DescribeInstances')[0]
    assert (query['VpcId'], query['InstanceType'], query['Tag.1.Key'], query['Tag.1.Value']) == ('vpc-1', 'ecs.g7.large', 'cluster', 'lab')


def test_unknown_ids_warn(capsys, monkeypatch):
    result, dummy = run_module(ecs_instance_info, {'region': 'cn-hangzhou', 'instance_ids': ['i-bp1master', 'i-gone']},
                               capsys, monkeypatch)
    assert [h['alicloud_instance_id'] for h in result['instances']] == ['i-bp1master']
    assert result['warnings'] == ['instance_ids: not found in region cn-hangzhou (or excluded by the other filters): i-gone']


def test_api_error_is_one_line_without_secret(capsys, monkeypatch):
    from ansible_collections.underlay.alicloud.plugins.module_utils.errors import AlicloudApiError

    def fail(action, query, n):
        return AlicloudApiError(action, 'SignatureDoesNotMatch', 'signature mismatch', request_id='RID', status=400)
    result, dummy = run_module(ecs_instance_info, {'region': 'cn-hangzhou', 'access_key_id': 'AKID', 'access_key_secret': SECRET},
                               capsys, monkeypatch, clients=FakeClients(world(), fail=fail))
    assert result['failed']
    assert result['msg'].endswith('failed: SignatureDoesNotMatch: signature mismatch (RequestId: RID)')
    assert result['error']['code'] == 'SignatureDoesNotMatch'
    assert SECRET not in json.dumps(result)
