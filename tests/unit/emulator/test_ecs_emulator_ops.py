"""Emulator knobs and tooling: fault injection, latency, statistics, state dump, admin endpoints, CLI, worlds."""
import json
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.error import HTTPError

import pytest
import yaml
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException

from ansible_collections.underlay.alicloud.tests.emulator import worldgen
from ansible_collections.underlay.alicloud.tests.emulator.ecs_emulator import EcsEmulator, WorldError, load_world

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def admin(emu, path, method='GET', data=None):
    request = urllib.request.Request(emu.url + '/_emulator/' + path, method=method, data=data)
    try:
        with OPENER.open(request, timeout=10) as response:
            return response.status, response.read(), response.headers.get('Content-Type')
    except HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get('Content-Type')


def outcomes(client, calls):
    """Per call: 'ok' or the error code."""
    result = []
    for dummy in range(calls):
        try:
            client.describe_regions(ecs_models.DescribeRegionsRequest())
            result.append('ok')
        except (ClientException, ServerException) as exc:
            result.append('%s/%s' % (exc.code, exc.status_code))
    return result


def test_fault_rates_are_honoured_and_seeded(sdk):
    runs = []
    for dummy in range(2):
        with EcsEmulator(sdk.lab_world, throttle_rate=0.3, unavailable_rate=0.1, seed=42) as emu:
            runs.append(outcomes(sdk.ecs(emu), 200))
            injected = {code: sum(1 for o in runs[-1] if o.startswith(code + '/')) for code in ('Throttling.User', 'ServiceUnavailable')}
            assert emu.stats_snapshot()['errors'] == emu.stats_snapshot()['faults'] == injected
    assert runs[0] == runs[1]
    throttled = runs[0].count('Throttling.User/400')
    unavailable = runs[0].count('ServiceUnavailable/503')
    assert 40 <= throttled <= 80 and 8 <= unavailable <= 35
    assert throttled + unavailable + runs[0].count('ok') == 200


def test_per_action_rates_and_retry_after(sdk):
    with EcsEmulator(sdk.lab_world, throttle_rate={'DescribeInstances': 1.0}, throttle_retry_after=1500) as emu:
        client = sdk.ecs(emu)
        assert outcomes(client, 5) == ['ok'] * 5
        err = sdk.error(client.describe_instances, ecs_models.DescribeInstancesRequest(region_id='cn-hangzhou'))
        assert isinstance(err, ThrottlingException) and err.retry_after == 1500 and err.code == 'Throttling.User'
        assert emu.request_counts() == {'DescribeRegions': 5, 'DescribeInstances': 1}


def test_latency_is_applied_without_serialising_requests(sdk):
    with EcsEmulator(sdk.lab_world, latency=200) as emu:
        client = sdk.ecs(emu)
        client.describe_regions(ecs_models.DescribeRegionsRequest())        # warm the connection
        started = time.monotonic()
        client.describe_regions(ecs_models.DescribeRegionsRequest())
        assert time.monotonic() - started >= 0.2
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: sdk.ecs(emu).describe_regions(ecs_models.DescribeRegionsRequest()), range(8)))
        assert time.monotonic() - started < 1.0                              # 8 x 0.2 s if serialised


def test_stats_state_and_admin_endpoints(sdk, tmp_path):
    log = tmp_path / 'requests.jsonl'
    with EcsEmulator(sdk.lab_world, request_log=str(log)) as emu:
        client = sdk.ecs(emu)
        client.assign_private_ip_addresses(ecs_models.AssignPrivateIpAddressesRequest(
            region_id='cn-hangzhou', network_interface_id='eni-bp1x0', secondary_private_ip_address_count=1))
        sdk.error(client.describe_instances, ecs_models.DescribeInstancesRequest(region_id='cn-nowhere'))
        status, body = admin(emu, 'stats')[:2]
        assert status == 200 and json.loads(body) == {
            'total': 2, 'actions': {'AssignPrivateIpAddresses': 1, 'DescribeInstances': 1}, 'errors': {'InvalidRegionId.NotFound': 1},
            'faults': {}}
        status, body, ctype = admin(emu, 'state')
        state = json.loads(body)
        x0 = [e for i in state['regions']['cn-hangzhou']['instances'] for e in i['enis'] if e['id'] == 'eni-bp1x0'][0]
        assert ctype.startswith('application/json') and x0['secondary_ips'] == ['172.31.192.1', '172.31.199.196', '172.31.199.197']
        status, body, ctype = admin(emu, 'state?format=yaml')
        assert ctype.startswith('application/yaml') and yaml.safe_load(body) == state == emu.state()
        reloaded = load_world(yaml.safe_load(body))                          # a dump is a valid world
        assert reloaded.enis['eni-bp1x0'].secondary_ips == x0['secondary_ips']
        assert [json.loads(line)['action'] for line in log.read_text().splitlines()] == ['AssignPrivateIpAddresses', 'DescribeInstances']
        assert 'labsecret' not in log.read_text()
        assert admin(emu, 'reset-stats', method='POST', data=b'')[0] == 200
        assert emu.request_counts() == {} and emu.stats_snapshot()['total'] == 0
        assert admin(emu, 'faults', method='POST', data=json.dumps({'throttle_rate': {'DescribeRegions': 1.0}}).encode())[0] == 200
        assert sdk.error(client.describe_regions, ecs_models.DescribeRegionsRequest()).code == 'Throttling.User'
        assert admin(emu, 'faults', method='POST', data=b'{"bogus": 1}')[0] == 400
        assert admin(emu, 'nothing')[0] == 404
        assert admin(emu, 'state', method='POST', data=b'')[0] == 404


def test_cli_prints_the_url_first_and_serves(sdk, tmp_path):
    script = os.path.join(sdk.root, 'tests', 'emulator', 'ecs_emulator.py')
    log = tmp_path / 'cli.jsonl'
    with subprocess.Popen([sys.executable, script, '--world', sdk.lab_world, '--listen', '127.0.0.1:0', '--latency', '1',
                           '--throttle-rate', 'DescribeInstances=1', '--seed', '3', '--request-log', str(log)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            line = proc.stdout.readline().rstrip('\n')
            assert line.startswith('listening on http://127.0.0.1:') and line.rsplit(':', 1)[1].isdigit()

            class Endpoint:  # pylint: disable=too-few-public-methods
                endpoint = line.split('//', 1)[1]
            client = sdk.ecs(Endpoint)
            assert client.describe_regions(ecs_models.DescribeRegionsRequest()).body.regions.region[0].region_id == 'cn-hangzhou'
            assert sdk.error(client.describe_instances, ecs_models.DescribeInstancesRequest(region_id='cn-hangzhou')).code == 'Throttling.User'
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert [json.loads(line)['status'] for line in log.read_text().splitlines()] == [200, 400]
    bad = subprocess.run([sys.executable, script, '--world', os.path.join(sdk.worlds, 'missing.yml')], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and 'missing.yml' in bad.stderr and bad.stdout == ''


@pytest.mark.parametrize('name', ['dual-stack.yml', 'three-nic.yml', 'two-regions.yml', 'edge-cases.yml'])
def test_extra_worlds_load_and_serve(sdk, name):
    path = os.path.join(sdk.worlds, name)
    spec = yaml.safe_load(open(path, encoding='utf-8'))
    key = spec['credentials'][0]
    with EcsEmulator(path) as emu:
        client = sdk.ecs(emu, key=key['id'], secret=key['secret'])
        total = 0
        for region in spec['regions']:
            body = client.describe_network_interfaces(ecs_models.DescribeNetworkInterfacesRequest(region_id=region, max_results=100)).body
            total += len(body.network_interface_sets.network_interface_set)
        assert total == sum(len(i['enis']) for r in spec['regions'].values() for i in r.get('instances', []))


def test_generated_addresses_in_worlds(sdk):
    world = load_world(os.path.join(sdk.worlds, 'dual-stack.yml'))
    cp1 = world.enis['eni-uf6dcp1']
    assert cp1.secondary_ips == ['10.20.16.1', '10.20.16.2', '10.20.16.3', '10.20.16.4']
    assert cp1.ipv6_ips == ['2408:4002:10c4:4e01::1', '2408:4002:10c4:4e01::2', '2408:4002:10c4:4e01::3', '2408:4002:10c4:4e01::4']
    w11 = world.enis['eni-uf6dw11']
    assert w11.primary_ip == '10.20.16.5' and w11.mac.startswith('00:16:3e:')
    assert len({e.mac for e in world.enis.values()}) == 4
    again = load_world(os.path.join(sdk.worlds, 'three-nic.yml'))
    assert again.dump() == load_world(os.path.join(sdk.worlds, 'three-nic.yml')).dump()


@pytest.mark.parametrize('mutate, message', [
    (lambda w: w['regions']['cn-hangzhou']['instances'][1]['enis'][0].update(primary_ip='172.31.199.183'), '172.31.199.183'),
    (lambda w: w['regions']['cn-hangzhou']['instances'][0]['enis'][0].update(primary_ip='172.31.207.254'), 'reserved'),
    (lambda w: w['regions']['cn-hangzhou']['instances'][0]['enis'][0].update(vswitch='vsw-nope'), 'vsw-nope'),
    (lambda w: w['regions']['cn-hangzhou']['instances'][0]['enis'][0]['secondary_ips'].append('172.31.199.199'), 'quota'),
    (lambda w: w['regions']['cn-hangzhou']['instances'][0].update(type='ecs.unknown.large'), 'ecs.unknown.large'),
    (lambda w: w['regions']['cn-hangzhou']['instances'][0].update(status='Sleeping'), 'Sleeping'),
])
def test_bad_worlds_are_refused_with_the_bad_value(sdk, mutate, message):
    world = yaml.safe_load(open(sdk.lab_world, encoding='utf-8'))
    mutate(world)
    with pytest.raises(WorldError, match=message):
        load_world(world)


def test_worldgen_is_deterministic_and_valid(sdk, tmp_path):
    first = worldgen.generate(instances=400, enis=3, regions=2, seed=5, ipv6=2)
    assert first == worldgen.generate(instances=400, enis=3, regions=2, seed=5, ipv6=2)
    assert first != worldgen.generate(instances=400, enis=3, regions=2, seed=6, ipv6=2)
    world = load_world(first)                    # validates CIDRs, reserved addresses and uniqueness
    assert len(world.instances) == 400 and len(world.enis) == 1200
    ids = list(world.instances) + list(world.enis) + list(world.vswitches)
    assert len(set(ids)) == len(ids)
    assert all(e.ipv6_ips for e in world.enis.values() if e.device_index == 2)
    out = tmp_path / 'w.json'
    script = os.path.join(sdk.root, 'tests', 'emulator', 'worldgen.py')
    subprocess.run([sys.executable, script, '--instances', '40', '--enis', '2', '--regions', '3', '--seed', '1', '-o', str(out)], check=True)
    assert json.loads(out.read_text()) == worldgen.generate(instances=40, enis=2, regions=3, seed=1)
    bad = subprocess.run([sys.executable, script, '--enis', '20'], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and 'no instance type' in bad.stderr
