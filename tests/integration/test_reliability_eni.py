"""ecs_eni and ecs_eni_ip under the faults that real clouds produce: lost answers to writes that
ran, dropped connections, read timeouts, ENIs lingering in Attaching/Detaching, ClientTokens that
replay, concurrent runs. Real ansible-playbook, real Alibaba SDK, the emulator injects the faults."""

import threading

import yaml

from cloud_helpers import EcsEmulator, cloud_env, load_world, run_tasks, write_world
from test_eni_modules import eni, eni_ip, eni_state, instance_enis

NEW_ENI = dict(name='w2-extra', instance_id='i-bp1worker2', vswitch_id='vsw-bp1b', security_groups=['sg-bp1lab'])


def lab(tmp_path, world=None, **faults):
    return EcsEmulator(write_world(tmp_path, world or load_world()), faults=faults)


def enis_named(emu, name):
    found = []
    for region in emu.state()['regions'].values():
        for instance in region['instances']:
            found += [e['id'] for e in instance['enis'] if e.get('name') == name]
        found += [e['id'] for e in region.get('enis', []) if e.get('name') == name]
    return found


def test_scaling_3_0_3_gets_fresh_addresses_every_run(tmp_path):
    # The same ENI state and request twice (3 -> 0 -> 3) must not get the first run's answer replayed.
    with lab(tmp_path, token_window=3600) as emu:
        env = cloud_env(emu)
        for count in (3, 0, 3, 3):
            run = run_tasks(tmp_path, env, [eni_ip(eni_id='eni-bp1spare', secondary_private_ip_address_count=count,
                                                   purge_secondary_private_ip_addresses=True, wait_timeout=3)])
            assert len(eni_state(emu, 'eni-bp1spare')['secondary_ips']) == count
        assert run.results['r0']['changed'] is False


def test_create_delete_create_makes_a_new_eni(tmp_path):
    spec = dict(name='tmp-eni', vswitch_id='vsw-bp1b', security_groups=['sg-bp1lab'])
    with lab(tmp_path) as emu:
        run = run_tasks(tmp_path, cloud_env(emu), [eni(**spec), eni(name='tmp-eni', state='absent'), eni(**spec)])
        first, second = run.results['r0']['network_interface']['id'], run.results['r2']['network_interface']['id']
        assert first != second and enis_named(emu, 'tmp-eni') == [second]
        assert emu.request_counts()['CreateNetworkInterface'] == 3   # the replayed create, then a fresh one


def test_lost_answers_to_every_eni_write_are_survived(tmp_path):
    lost = {'CreateNetworkInterface': 1.0, 'AttachNetworkInterface': 1.0, 'AssignPrivateIpAddresses': 1.0,
            'UnassignPrivateIpAddresses': 1.0, 'DetachNetworkInterface': 1.0, 'DeleteNetworkInterface': 1.0}
    with lab(tmp_path, lost_answer_rate=lost, lost_answer_limit=dict.fromkeys(lost, 1)) as emu:
        run = run_tasks(tmp_path, cloud_env(emu), [
            eni(**NEW_ENI),
            eni_ip(eni_id='eni-bp1x1', secondary_private_ip_address_count=4),
            eni_ip(eni_id='eni-bp1x1', secondary_private_ip_address_count=1, purge_secondary_private_ip_addresses=True),
            eni(name='w2-extra', state='absent')])
        assert all(result['changed'] for result in run.results.values())
        assert emu.stats_snapshot()['faults'] == {'LostAnswer': 6}
        assert enis_named(emu, 'w2-extra') == []
        assert len(eni_state(emu, 'eni-bp1x1')['secondary_ips']) == 1


def test_dropped_connections_get_more_than_the_connect_retries(tmp_path):
    with lab(tmp_path, drop_rate={'DescribeNetworkInterfaces': 1.0}, drop_limit=4) as emu:
        run = run_tasks(tmp_path, cloud_env(emu), [eni_ip(eni_id='eni-bp1x1', secondary_private_ip_address_count=3)])
        assert run.results['r0']['changed'] is True
        assert emu.stats_snapshot()['faults'] == {'ConnectionDropped': 4}


def test_read_timeout_is_retried_and_worded_as_no_answer(tmp_path):
    with lab(tmp_path, read_timeout_rate={'AssignPrivateIpAddresses': 1.0}, read_timeout_limit=1,
             read_timeout_seconds=2) as emu:
        run = run_tasks(tmp_path, cloud_env(emu), [eni_ip(eni_id='eni-bp1x1', secondary_private_ip_address_count=4, timeout=1)])
        assert len(eni_state(emu, 'eni-bp1x1')['secondary_ips']) == 4       # assigned once, not twice
        assert run.results['r0']['changed'] is True
        emu.configure({'read_timeout_rate': {'DescribeNetworkInterfaces': 1.0}, 'read_timeout_limit': None,
                       'read_timeout_seconds': 2})
        run = run_tasks(tmp_path, cloud_env(emu), [eni_ip(eni_id='eni-bp1x1', secondary_private_ip_address_count=4,
                                                          timeout=1, max_retries=1)], expect_rc=2)
        msg = run.failure()['msg']
        assert 'ReadTimeout: no answer from 127.0.0.1:%d within 1 s' % emu.port in msg and 'cannot connect' not in msg


def test_an_eni_still_attaching_fails_every_run_until_it_settles(tmp_path):
    with lab(tmp_path, attach_seconds=12) as emu:
        run = run_tasks(tmp_path, cloud_env(emu), [
            dict(eni(**NEW_ENI, wait_timeout=1), ignore_errors=True),
            dict(eni(**NEW_ENI, wait_timeout=1), ignore_errors=True),
            eni(**NEW_ENI, wait_timeout=60)])
        first, second, third = run.results['r0'], run.results['r1'], run.results['r2']
        assert first['failed'] and first['changed'] is True and 'still Attaching' in first['msg']
        assert second['failed'] and 'still Attaching' in second['msg']
        assert third['changed'] is False and third['network_interface']['status'] == 'InUse'
        assert len(enis_named(emu, 'w2-extra')) == 1


def test_absent_waits_for_a_detaching_eni(tmp_path):
    world = load_world()
    world['regions']['cn-hangzhou']['instances'][2]['enis'][1]['status'] = 'Detaching'
    with lab(tmp_path, world, attach_seconds=2) as emu:
        run = run_tasks(tmp_path, cloud_env(emu), [eni(eni_id='eni-bp1x1', state='absent')])
        assert run.results['r0']['changed'] is True and eni_state(emu, 'eni-bp1x1') is None


def test_vswitch_of_another_zone_fails_before_creating(tmp_path):
    with lab(tmp_path) as emu:
        spec = {**NEW_ENI, 'vswitch_id': 'vsw-bp1c'}
        for _attempt in range(2):
            run = run_tasks(tmp_path, cloud_env(emu), [eni(**spec)], expect_rc=2)
            failure = run.failure()
            assert 'vsw-bp1c is in zone cn-hangzhou-j but instance i-bp1worker2 is in zone cn-hangzhou-i' in failure['msg']
            assert failure['changed'] is False
        assert 'CreateNetworkInterface' not in emu.request_counts() and enis_named(emu, 'w2-extra') == []


def test_unknown_security_group_fails_before_creating(tmp_path):
    with lab(tmp_path) as emu:
        run = run_tasks(tmp_path, cloud_env(emu), [eni(**{**NEW_ENI, 'security_groups': ['sg-bp1nope']})], expect_rc=2)
        assert run.failure()['msg'] == 'security_groups: sg-bp1nope not found in region cn-hangzhou'
        assert 'CreateNetworkInterface' not in emu.request_counts()


def test_a_failed_attach_deletes_the_eni_it_created(tmp_path):
    with lab(tmp_path, unavailable_rate={'AttachNetworkInterface': 1.0}) as emu:
        run = run_tasks(tmp_path, cloud_env(emu), [eni(**NEW_ENI, max_retries=0)], expect_rc=2)
        failure = run.failure()
        assert failure['changed'] is True
        assert failure['msg'].startswith('AttachNetworkInterface failed: ServiceUnavailable')
        assert 'created by this run was deleted again' in failure['msg']
        assert enis_named(emu, 'w2-extra') == [] and len(instance_enis(emu, 'i-bp1worker2')) == 2


def test_concurrent_count_runs_report_the_over_allocation(tmp_path):
    inventory = tmp_path / 'hosts.yml'
    inventory.write_text(yaml.safe_dump({'all': {'hosts': {'run-a': {'want': 4}, 'run-b': {'want': 5}}}}))
    # Latency keeps both runs' reads ahead of both assignments (forked workers start together).
    with lab(tmp_path, latency=400) as emu:
        run = run_tasks(tmp_path, cloud_env(emu), [eni_ip(eni_id='eni-bp1spare', secondary_private_ip_address_count='{{ want }}')],
                        '--forks', '2', inventory=str(inventory), hosts='all', expect_rc=2)
        assert len(eni_state(emu, 'eni-bp1spare')['secondary_ips']) == 9
        assert 'appeared while this run assigned by count' in run.output
        assert 'changed=1' in run.output and 'failed=1' in run.output
        emu.configure({'latency': 0})
        run_tasks(tmp_path, cloud_env(emu), [eni_ip(eni_id='eni-bp1spare', secondary_private_ip_address_count=5,
                                                    purge_secondary_private_ip_addresses=True)])
        assert len(eni_state(emu, 'eni-bp1spare')['secondary_ips']) == 5


def test_two_runs_creating_the_same_eni_at_once_make_one(tmp_path):
    with lab(tmp_path, latency=200, attach_steps=3) as emu:
        results = []

        def one_run():
            results.append(run_tasks(tmp_path, cloud_env(emu), [eni(**NEW_ENI)], expect_rc=None))

        threads = [threading.Thread(target=one_run), threading.Thread(target=one_run)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [r.rc for r in results] == [0, 0], results[0].output + results[1].output
        assert len(enis_named(emu, 'w2-extra')) == 1
