"""vswitch_info: validation, single and multiple ids, records."""
import pytest

from ansible_collections.underlay.alicloud.plugins.modules import vswitch_info
from ansible_collections.underlay.alicloud.tests.unit.plugins.module_utils.fake_api import FakeClients, vswitch
from ansible_collections.underlay.alicloud.tests.unit.plugins.modules.test_ecs_instance_info import run_module


def world():
    vsws = [vswitch('vsw-%03d' % n, '10.%d.%d.0/24' % (n // 256, n % 256)) for n in range(120)]
    vsws.append(vswitch('vsw-v6', '192.168.0.0/24', vpc='vpc-2', ipv6='2408:4005:3a1:a400::/64'))
    return {'cn-hangzhou': {'instances': [], 'enis': [], 'types': [], 'vswitches': vsws}}


@pytest.mark.parametrize('args,message', [
    ({'region': 'cn-hangzhou', 'vswitch_ids': ['vpc-1']}, "vswitch_ids: 'vpc-1' is not a valid vswitch id"),
    ({'region': 'cn-hangzhou', 'filters': {'PageSize': 10}}, 'filters: PageSize is set by the collection itself (every page is read); remove it'),
    ({'region': 'cn-hangzhou', 'timeout': 'soon'}, 'timeout'),
    ({'region': 'cn-hangzhou', 'filters': {'EnabledIpv6': True}},
     "filters: unknown DescribeVSwitches parameter 'EnabledIpv6' (did you mean 'EnableIpv6'?)"),
    ({'region': 'cn-hangzhou', 'filters': {'Status': 'Available'}}, "filters: unknown DescribeVSwitches parameter 'Status'"),
])
def test_bad_input(args, message, capsys, monkeypatch):
    result, fake = run_module(vswitch_info, args, capsys, monkeypatch, clients=FakeClients(world()))
    assert result['failed'] and message in result['msg'] and fake.requests == []


def test_all_pages(capsys, monkeypatch):
    result, fake = run_module(vswitch_info, {'region': 'cn-hangzhou'}, capsys, monkeypatch, clients=FakeClients(world()))
    assert len(result['vswitches']) == 121 and len(fake.calls('DescribeVSwitches')) == 3
    v6 = result['vswitches'][-1]
    assert v6 == {'id': 'vsw-v6', 'name': 'vsw-v6-name', 'vpc_id': 'vpc-2', 'zone_id': 'cn-hangzhou-i', 'cidr': '192.168.0.0/24',
                  'gateway': '192.168.0.253', 'ipv6_cidr': '2408:4005:3a1:a400::/64', 'available_ip_count': 100,
                  'usable_ip_count': 252, 'status': 'Available', 'is_default': False, 'tags': {'env': 'lab'}}


def test_one_id_is_an_api_filter_several_are_picked(capsys, monkeypatch):
    result, fake = run_module(vswitch_info, {'region': 'cn-hangzhou', 'vswitch_ids': ['vsw-v6']}, capsys, monkeypatch,
                              clients=FakeClients(world()))
    assert fake.calls('DescribeVSwitches')[0]['VSwitchId'] == 'vsw-v6'
    result, fake = run_module(vswitch_info, {'region': 'cn-hangzhou', 'vswitch_ids': ['vsw-v6', 'vsw-001', 'vsw-zzz'], 'vpc_id': 'vpc-1'},
                              capsys, monkeypatch, clients=FakeClients(world()))
    assert 'VSwitchId' not in fake.calls('DescribeVSwitches')[0] and fake.calls('DescribeVSwitches')[0]['VpcId'] == 'vpc-1'
    assert [v['id'] for v in result['vswitches']] == ['vsw-001']
    assert result['warnings'] == ['vswitch_ids: not found in region cn-hangzhou (or excluded by the other filters): vsw-v6, vsw-zzz']
