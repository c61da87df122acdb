"""Transport faults, lingering ENI states, the ClientToken window and security groups, through the real SDK."""
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from alibabacloud_ecs20140526 import models as ecs_models
from darabonba.exceptions import UnretryableException

from ansible_collections.underlay.alicloud.tests.emulator.ecs_emulator import EcsEmulator, WorldError, load_world

REGION = 'cn-hangzhou'


def assign(client, eni_id, **kwargs):
    return client.assign_private_ip_addresses(ecs_models.AssignPrivateIpAddressesRequest(
        region_id=REGION, network_interface_id=eni_id, **kwargs))


def status(client, eni_id):
    body = client.describe_network_interfaces(ecs_models.DescribeNetworkInterfacesRequest(
        region_id=REGION, network_interface_id=[eni_id])).body.to_map()
    return body['NetworkInterfaceSets']['NetworkInterfaceSet'][0]['Status']


def secondaries(emu, eni_id):
    for instance in emu.state()['regions'][REGION]['instances']:
        for eni in instance['enis']:
            if eni['id'] == eni_id:
                return eni['secondary_ips']
    raise KeyError(eni_id)


def transport_error(func, *args, **kwargs):
    with pytest.raises(UnretryableException) as info:
        func(*args, **kwargs)
    return str(info.value.inner_exception)


def test_lost_answer_runs_the_write_and_the_limit_counts(sdk, fresh_lab):
    fresh_lab.configure({'lost_answer_rate': {'AssignPrivateIpAddresses': 1.0}, 'lost_answer_limit': 1})
    client = sdk.ecs(fresh_lab)
    text = transport_error(assign, client, 'eni-bp1x0', secondary_private_ip_address_count=1, client_token='t-1')
    assert 'RemoteDisconnected' in text
    assert len(secondaries(fresh_lab, 'eni-bp1x0')) == 3          # the write happened
    # The limit is spent: the retry with the same token gets the original answer, no new address.
    body = assign(client, 'eni-bp1x0', secondary_private_ip_address_count=1, client_token='t-1').body.to_map()
    assert body['AssignedPrivateIpAddressesSet']['PrivateIpSet']['PrivateIpAddress'] == ['172.31.192.1']
    assert len(secondaries(fresh_lab, 'eni-bp1x0')) == 3
    assert fresh_lab.stats_snapshot()['faults'] == {'LostAnswer': 1}


def test_dropped_connection_runs_nothing(sdk, fresh_lab):
    fresh_lab.configure({'drop_rate': 1.0})
    client = sdk.ecs(fresh_lab)
    assert 'RemoteDisconnected' in transport_error(assign, client, 'eni-bp1x0', secondary_private_ip_address_count=1)
    fresh_lab.configure({'drop_rate': 0})
    assert len(secondaries(fresh_lab, 'eni-bp1x0')) == 2
    assert fresh_lab.stats_snapshot()['faults'] == {'ConnectionDropped': 1}


def test_read_timeout_runs_the_write_and_answers_too_late(sdk, fresh_lab):
    fresh_lab.configure({'read_timeout_rate': {'AssignPrivateIpAddresses': 1.0}, 'read_timeout_seconds': 1.5})
    client = sdk.ecs(fresh_lab, read_timeout=500)
    started = time.monotonic()
    assert 'Read timed out' in transport_error(assign, client, 'eni-bp1x0', secondary_private_ip_address_count=1)
    assert time.monotonic() - started < 1.5
    assert len(secondaries(fresh_lab, 'eni-bp1x0')) == 3


def test_fault_draws_are_seeded_per_action():
    def pattern():
        emu = EcsEmulator(load_world(os.path.join(os.path.dirname(__file__), '..', '..', '..', 'inventories', 'lab', 'world.yml')),
                          faults={'lost_answer_rate': {'AttachNetworkInterface': 0.5}, 'seed': 3})
        return [emu.faults.transport('AttachNetworkInterface') for _draw in range(20)] + [emu.faults.transport('DescribeRegions')]

    first = pattern()
    assert first == pattern()
    assert 'lost_answer' in first and None in first[:20] and first[-1] is None


def test_client_token_replays_only_within_the_window(sdk, fresh_lab):
    fresh_lab.configure({'token_window': 0.3})
    client = sdk.ecs(fresh_lab)
    assign(client, 'eni-bp1x0', secondary_private_ip_address_count=1, client_token='same')
    assign(client, 'eni-bp1x0', secondary_private_ip_address_count=1, client_token='same')
    assert len(secondaries(fresh_lab, 'eni-bp1x0')) == 3
    time.sleep(0.4)
    assign(client, 'eni-bp1x0', secondary_private_ip_address_count=1, client_token='same')
    assert len(secondaries(fresh_lab, 'eni-bp1x0')) == 4


def test_enis_linger_in_between_states_for_attach_seconds(sdk, fresh_lab):
    fresh_lab.configure({'attach_steps': 1, 'attach_seconds': 0.5})
    client = sdk.ecs(fresh_lab)
    client.attach_network_interface(ecs_models.AttachNetworkInterfaceRequest(
        region_id=REGION, network_interface_id='eni-bp1spare', instance_id='i-bp1stopped'))
    assert [status(client, 'eni-bp1spare') for _describe in range(3)] == ['Attaching'] * 3
    time.sleep(0.6)
    assert status(client, 'eni-bp1spare') == 'InUse'


def test_world_enis_in_between_states_settle(sdk, tmp_path):
    world = load_world(os.path.join(sdk.root, 'inventories', 'lab', 'world.yml')).dump()
    world['regions'][REGION]['instances'][0]['enis'][1]['status'] = 'Detaching'
    with EcsEmulator(world, attach_steps=2) as emu:
        client = sdk.ecs(emu)
        assert [status(client, 'eni-bp1m1') for _describe in range(2)] == ['Detaching', 'Detaching']
        assert status(client, 'eni-bp1m1') == 'Available'
    world['regions'][REGION]['instances'][0]['enis'][0]['status'] = 'Attaching'
    with pytest.raises(WorldError, match='eni-bp1m0: status Attaching needs a secondary ENI'):
        EcsEmulator(world)


def test_security_groups_are_known_per_vpc(sdk, fresh_lab):
    client = sdk.ecs(fresh_lab)
    body = client.describe_security_groups(ecs_models.DescribeSecurityGroupsRequest(
        region_id=REGION, security_group_ids=json.dumps(['sg-bp1lab', 'sg-bp1nope']))).body.to_map()
    assert [(g['SecurityGroupId'], g['VpcId']) for g in body['SecurityGroups']['SecurityGroup']] == [('sg-bp1lab', 'vpc-bp1lab')]
    err = sdk.error(client.create_network_interface, ecs_models.CreateNetworkInterfaceRequest(
        region_id=REGION, v_switch_id='vsw-bp1b', security_group_ids=['sg-bp1nope']))
    assert (err.code, err.status_code) == ('InvalidSecurityGroupId.NotFound', 404)


def test_unknown_settings_are_refused(fresh_lab):
    with pytest.raises(ValueError, match='unknown settings: lost_answers'):
        fresh_lab.configure({'lost_answers': 1})
    request = urllib.request.Request(fresh_lab.url + '/_emulator/faults', data=b'{"drop_limit": -1}', method='POST')
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request)  # noqa: S310 (local emulator)
    assert info.value.code == 400 and b'must be a limit of 0 or more' in info.value.read()


def test_cli_takes_the_fault_options(sdk, tmp_path):
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, os.path.join(sdk.root, 'tests', 'emulator', 'ecs_emulator.py'), '--world', sdk.lab_world,
         '--lost-answer-rate', 'AssignPrivateIpAddresses=1', '--lost-answer-limit', '1', '--drop-rate', '0',
         '--read-timeout-rate', '0', '--token-window', '60', '--attach-seconds', '0.1'],
        stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[-1]
        emu_like = type('E', (), {'endpoint': url.split('//', 1)[1]})
        client = sdk.ecs(emu_like)
        assert 'RemoteDisconnected' in transport_error(assign, client, 'eni-bp1x0', secondary_private_ip_address_count=1)
        assign(client, 'eni-bp1x0', secondary_private_ip_address_count=1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
