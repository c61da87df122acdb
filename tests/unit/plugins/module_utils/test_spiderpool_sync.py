# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import copy
import json
import threading
import time

import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils import iprange
from ansible_collections.underlay.alicloud.plugins.module_utils import spiderpool_sync as sync
from ansible_collections.underlay.alicloud.plugins.module_utils.planner import plan
from ansible_collections.underlay.alicloud.tests.unit.plugins.module_utils.test_planner import guide_hosts

OWNER = {'app.kubernetes.io/managed-by': 'underlay.alicloud'}


def desired():
    return plan(guide_hosts())['objects']


def as_stored(obj, **spec_extra):
    """What the API returns after the webhooks ran on ``obj``."""
    stored = copy.deepcopy(obj)
    stored['metadata'].update(uid='u-' + obj['metadata']['name'], resourceVersion='7', generation=1)
    if obj['kind'] == sync.POOL:
        stored['metadata']['labels']['ipam.spidernet.io/ippool-cidr'] = obj['spec']['subnet'].replace('.', '-').replace('/', '-')
        stored['metadata']['finalizers'] = ['spiderpool.spidernet.io']
        stored['spec'].update(disable=False)
        stored['status'] = {'allocatedIPCount': 0, 'totalIPCount': 5}
    else:
        stored['spec'].update(disableIPAM=False, chainCNIJsonData=[],
                              coordinator={'mode': 'auto', 'tunePodRoutes': True, 'podRPFilter': 0, 'hijackCIDR': []})
        # As the real 1.2.2 API stores it: the planned ippools kept as sent, the CRD default
        # matchMasterSubnet added (the webhook fills an empty ippools when there is none).
        ippools = dict(obj['spec'].get('ipvlan', {}).get('ippools') or {}, matchMasterSubnet=False)
        stored['spec']['ipvlan'].update(vlanID=0, mtu=0, rdmaResourceName='', ippools=ippools)
    stored['spec'].update(spec_extra)
    return stored


def split(objects):
    return [o for o in objects if o['kind'] == sync.SMC], [o for o in objects if o['kind'] == sync.POOL]


def run(current, wanted=None, **options):
    smcs, pools = split(current)
    return sync.plan_sync(desired() if wanted is None else wanted, smcs, pools, OWNER, **options)


def by_name(result):
    return {c['name']: c for c in result['changes']}


def allocate(pool, ip, pod='default/app-1'):
    pool['status'] = {'allocatedIPs': json.dumps({ip: {'pod': pod, 'podUid': 'uid-1'}}), 'allocatedIPCount': 1}
    return pool


def test_empty_cluster_creates_everything_in_order():
    result = run([])
    assert [(c['action'], c['name']) for c in result['changes']] == [
        ('create', 'ipvlan-eth0'), ('create', 'ipvlan-eth1'), ('create', 'master-eth0-v4'), ('create', 'master-eth1-v4'),
        ('create', 'worker-eth0-v4'), ('create', 'worker-eth1-v4')]
    assert result['unchanged'] == 0 and result['kept'] == []
    assert result['changes'][0]['namespace'] == 'kube-system' and 'namespace' not in result['changes'][2]


def test_webhook_rewritten_objects_are_unchanged():
    current = [as_stored(o) for o in desired()]
    # The webhook stores single addresses merged; a list of singles is the same set.
    pool = next(o for o in current if o['metadata']['name'] == 'master-eth0-v4')
    pool['spec']['ips'] = ['172.31.199.189', '172.31.199.185-172.31.199.187', '172.31.199.188']
    result = run(current)
    assert result['changes'] == [] and result['unchanged'] == 6


def test_added_and_removed_addresses_update_the_pool():
    current = [as_stored(o) for o in desired()]
    wanted = desired()
    pool = next(o for o in wanted if o['metadata']['name'] == 'worker-eth0-v4')
    pool['spec']['ips'] = ['172.31.199.191-172.31.199.195']
    stored = next(o for o in current if o['metadata']['name'] == 'worker-eth0-v4')
    stored['spec']['disable'] = True                     # an operator drained the pool
    stored['spec']['excludeIPs'] = ['172.31.199.194']
    change = by_name(run(current, wanted))['worker-eth0-v4']
    assert change['action'] == 'update'
    assert (change['added'], change['removed']) == (['172.31.199.195'], ['172.31.199.190'])
    body = change['body']
    assert body['spec']['ips'] == ['172.31.199.191-172.31.199.195']
    assert body['spec']['disable'] is True and body['spec']['excludeIPs'] == ['172.31.199.194']
    assert body['metadata']['resourceVersion'] == '7' and body['metadata']['finalizers'] == ['spiderpool.spidernet.io']
    assert body['metadata']['labels']['ipam.spidernet.io/ippool-cidr'] == '172-31-192-0-20'


def test_removing_an_allocated_address_is_refused_naming_ip_and_pod():
    current = [as_stored(o) for o in desired()]
    allocate(next(o for o in current if o['metadata']['name'] == 'worker-eth0-v4'), '172.31.199.193', 'default/test-app-1-x7')
    wanted = desired()
    next(o for o in wanted if o['metadata']['name'] == 'worker-eth0-v4')['spec']['ips'] = ['172.31.199.190-172.31.199.192']
    with pytest.raises(sync.SyncError) as info:
        run(current, wanted)
    assert str(info.value) == ('refusing to remove 172.31.199.193 (pod default/test-app-1-x7) from SpiderIPPool worker-eth0-v4: '
                               'in use; move or delete the pod first')
    # Removing other, free addresses of that pool is fine.
    next(o for o in wanted if o['metadata']['name'] == 'worker-eth0-v4')['spec']['ips'] = ['172.31.199.193']
    assert by_name(run(current, wanted))['worker-eth0-v4']['removed'] == ['172.31.199.190-172.31.199.192', '172.31.199.194']


def test_placeholder_is_replaced_not_merged():
    current = [as_stored(o) for o in desired()]
    current[0] = {'apiVersion': sync.API_VERSION, 'kind': sync.SMC,
                  'metadata': {'name': 'ipvlan-eth0', 'namespace': 'kube-system', 'resourceVersion': '3'},
                  'spec': {'cniType': 'custom', 'customCNI': '', 'enableCoordinator': False,
                           'coordinator': {'mode': 'auto'}}}
    change = by_name(run(current))['ipvlan-eth0']
    assert change['action'] == 'replace'
    assert change['body']['spec'] == {'cniType': 'ipvlan', 'enableCoordinator': True,
                                      'ipvlan': {'master': ['eth0'], 'ippools': {'ipv4': ['*-eth0-v4']}}}
    assert change['body']['metadata']['resourceVersion'] == '3'
    assert change['body']['metadata']['labels'] == {'app.kubernetes.io/managed-by': 'underlay.alicloud', 'underlay.alicloud/interface': 'eth0'}
    with pytest.raises(sync.SyncError, match=r"^SpiderMultusConfig kube-system/ipvlan-eth0 is the chart's cniType custom placeholder"):
        run(current, replace_placeholder=False)
    assert sync.is_placeholder({'spec': {}}) and sync.is_placeholder({'spec': {'cniType': 'ipvlan', 'customCNI': '{}'}})


def test_smc_drift_and_adoption():
    current = [as_stored(o) for o in desired()]
    current[1]['spec']['ipvlan']['mtu'] = 1400           # set by hand, not planned
    current[0]['metadata']['labels'] = {}                # made by hand from the guide: adopted
    changes = by_name(run(current))
    assert changes['ipvlan-eth1']['action'] == 'update'
    assert changes['ipvlan-eth1']['body']['spec']['ipvlan'] == {'master': ['eth1'], 'ippools': {'ipv4': ['*-eth1-v4']}}
    assert changes['ipvlan-eth1']['body']['spec']['coordinator']['mode'] == 'auto'     # webhook-filled block kept
    assert changes['ipvlan-eth0']['action'] == 'update'
    assert changes['ipvlan-eth0']['body']['metadata']['labels']['app.kubernetes.io/managed-by'] == 'underlay.alicloud'


def test_smc_without_or_with_other_ippools_is_updated_to_the_planned_ones():
    current = [as_stored(o) for o in desired()]
    current[0]['spec']['ipvlan']['ippools'] = {'ipv4': [], 'ipv6': [], 'matchMasterSubnet': False}   # made before ippools were planned
    current[1]['spec']['ipvlan']['ippools'] = {'ipv4': ['master-eth1-v4'], 'matchMasterSubnet': False}
    changes = by_name(run(current))
    assert sorted(changes) == ['ipvlan-eth0', 'ipvlan-eth1']
    assert changes['ipvlan-eth0']['body']['spec']['ipvlan']['ippools'] == {'ipv4': ['*-eth0-v4']}
    assert changes['ipvlan-eth0']['before']['spec']['ipvlan'] == {'master': ['eth0']}
    assert changes['ipvlan-eth0']['after']['spec']['ipvlan'] == {'ippools': {'ipv4': ['*-eth0-v4']}, 'master': ['eth0']}
    assert changes['ipvlan-eth1']['body']['spec']['ipvlan']['ippools'] == {'ipv4': ['*-eth1-v4']}
    # Stored as planned (plus the CRD default): nothing to do.
    assert run([as_stored(o) for o in desired()])['changes'] == []


def test_subnet_change_recreates_an_empty_pool_and_refuses_a_used_one():
    current = [as_stored(o) for o in desired()]
    stored = next(o for o in current if o['metadata']['name'] == 'master-eth1-v4')
    stored['spec'].update(subnet='192.168.0.0/25')
    assert by_name(run(current))['master-eth1-v4']['action'] == 'recreate'
    allocate(stored, '192.168.0.157')
    with pytest.raises(sync.SyncError, match=r'^SpiderIPPool master-eth1-v4 must move from subnet 192.168.0.0/25 to 192.168.0.0/24 '
                                             r'\(subnet is immutable\) but holds 192.168.0.157 \(pod default/app-1\); move those pods first$'):
        run(current)


def test_terminating_pool_is_an_error():
    current = [as_stored(o) for o in desired()]
    next(o for o in current if o['metadata']['name'] == 'master-eth0-v4')['metadata']['deletionTimestamp'] = '2026-01-01T00:00:00Z'
    with pytest.raises(sync.SyncError, match='SpiderIPPool master-eth0-v4 is being deleted'):
        run(current)


def stale_pool(name, ips, owned=True, subnet='172.31.192.0/20'):
    labels = dict(OWNER) if owned else {'team': 'net'}
    return as_stored({'apiVersion': sync.API_VERSION, 'kind': sync.POOL, 'metadata': {'name': name, 'labels': labels},
                      'spec': {'subnet': subnet, 'ips': ips, 'multusName': ['kube-system/ipvlan-eth9']}})


def test_prune_only_owned_and_empty_pools():
    current = [as_stored(o) for o in desired()]
    current += [stale_pool('old-eth0-v4', ['172.31.199.10']), allocate(stale_pool('busy-eth0-v4', ['172.31.199.11']), '172.31.199.11'),
                stale_pool('foreign', ['172.31.199.12'], owned=False)]
    result = run(current)
    assert [(c['action'], c['name']) for c in result['changes']] == [('delete', 'old-eth0-v4')]
    assert result['kept'] == ['stale SpiderIPPool busy-eth0-v4 kept: it still holds 172.31.199.11 (pod default/app-1)']
    assert run(current, prune=False)['changes'] == []


def test_stale_multus_config_pruned_unless_a_pool_refers_to_it():
    stale_smc = as_stored({'apiVersion': sync.API_VERSION, 'kind': sync.SMC,
                           'metadata': {'name': 'ipvlan-eth9', 'namespace': 'kube-system', 'labels': dict(OWNER)},
                           'spec': {'cniType': 'ipvlan', 'ipvlan': {'master': ['eth9']}}})
    current = [as_stored(o) for o in desired()] + [stale_smc]
    assert [(c['action'], c['name']) for c in run(current)['changes']] == [('delete', 'ipvlan-eth9')]
    current.append(allocate(stale_pool('busy', ['172.31.199.11']), '172.31.199.11'))
    result = run(current)
    assert result['changes'] == []
    assert 'stale SpiderMultusConfig kube-system/ipvlan-eth9 kept: a pool still refers to it' in result['kept']


def test_overlap_with_a_pool_not_managed_here_is_refused():
    current = [stale_pool('guide-master-172', ['172.31.199.185-172.31.199.189'], owned=False)]
    with pytest.raises(sync.SyncError) as info:
        run(current)
    assert str(info.value) == ('address 172.31.199.185 would be in both SpiderIPPool guide-master-172 and master-eth0-v4; '
                               'remove it from the pool not managed here first')


def test_writes_free_addresses_before_others_take_them():
    current = [as_stored(o) for o in desired()] + [stale_pool('old-eth0-v4', ['172.31.199.10-172.31.199.11'])]
    wanted = desired()
    pools = {o['metadata']['name']: o for o in wanted}
    pools['worker-eth0-v4']['spec']['ips'] = ['172.31.199.11']                      # takes an address of a pruned pool
    pools['master-eth0-v4']['spec']['ips'] = ['172.31.199.186-172.31.199.190']      # gives .185, takes .190 from worker
    pools['master-eth1-v4']['spec']['ips'] = ['192.168.0.156-192.168.0.161']        # grows only: takes worker's .161
    pools['worker-eth1-v4']['spec']['ips'] = ['192.168.0.162-192.168.0.165']        # shrinks only
    changes = run(current, wanted)['changes']
    phases = sync.writes(changes)
    summary = [[(w['verb'], w['change']['name'], w['body']['spec']['ips'] if w['body'] else None) for w in phase] for phase in phases]
    assert summary == [
        [('delete', 'old-eth0-v4', None)],
        [('replace', 'master-eth0-v4', ['172.31.199.186-172.31.199.189']),
         ('replace', 'worker-eth0-v4', []),
         ('replace', 'worker-eth1-v4', ['192.168.0.162-192.168.0.165'])],
        [('replace', 'master-eth0-v4', ['172.31.199.186-172.31.199.190']),
         ('replace', 'master-eth1-v4', ['192.168.0.156-192.168.0.161']),
         ('replace', 'worker-eth0-v4', ['172.31.199.11'])],
    ]
    assert phases[1][0]['then'] is phases[2][0]
    freed = sync.freed_addresses(changes)
    assert iprange.format_ranges(freed) == ['172.31.199.10-172.31.199.11', '172.31.199.185', '172.31.199.190-172.31.199.194',
                                            '192.168.0.161']
    assert [[sync.needs_prior_writes(w, freed) for w in phase] for phase in phases] == [[False], [False, False, False], [True, True, True]]


def test_recreate_is_delete_then_create():
    current = [as_stored(o) for o in desired()]
    next(o for o in current if o['metadata']['name'] == 'master-eth1-v4')['spec']['subnet'] = '192.168.0.0/25'
    changes = run(current)['changes']
    phases = sync.writes(changes)
    steps = [[(w['verb'], w['change']['name']) for w in phase] for phase in phases]
    assert steps == [[('delete', 'master-eth1-v4')], [('create', 'master-eth1-v4')]]
    freed = sync.freed_addresses(changes)
    assert [sync.needs_prior_writes(p[0], freed) for p in phases] == [False, True]


def conflicting_update(current, ips):
    """The replace write of worker-eth0-v4 planned to hold ``ips``, and the pool as listed."""
    wanted = desired()
    next(o for o in wanted if o['metadata']['name'] == 'worker-eth0-v4')['spec']['ips'] = ips
    change = by_name(run(current, wanted))['worker-eth0-v4']
    return sync.writes([change]), next(o for o in current if o['metadata']['name'] == 'worker-eth0-v4')


def test_a_conflicting_status_write_rebases_the_planned_spec_on_the_fresh_object():
    current = [as_stored(o) for o in desired()]
    phases, listed = conflicting_update(current, ['172.31.199.190-172.31.199.195'])
    write = phases[0][0]
    # Spiderpool allocated an address after the listing: new resourceVersion, status and a label.
    fresh = allocate(copy.deepcopy(listed), '172.31.199.191')
    fresh['metadata'].update(resourceVersion='9', managedFields=[{'manager': 'spiderpool-agent'}])
    fresh['metadata']['labels']['other'] = 'x'
    body = sync.rebase(write, fresh)
    assert body['spec'] == write['body']['spec'] and body['spec']['ips'] == ['172.31.199.190-172.31.199.195']
    assert body['metadata']['resourceVersion'] == '9' and 'managedFields' not in body['metadata']
    assert body['metadata']['labels']['other'] == 'x' and body['metadata']['labels'].items() >= OWNER.items()
    assert body['metadata']['finalizers'] == ['spiderpool.spidernet.io']
    # Already what we planned (another run got there first): nothing to write.
    done = copy.deepcopy(fresh)
    done['spec']['ips'] = ['172.31.199.190-172.31.199.195']
    assert sync.rebase(write, done) is None


def test_a_conflict_that_makes_the_write_unsafe_is_refused():
    current = [as_stored(o) for o in desired()]
    phases, listed = conflicting_update(current, ['172.31.199.190-172.31.199.192'])
    write = phases[0][0]
    taken = allocate(copy.deepcopy(listed), '172.31.199.194', 'default/new-pod')
    with pytest.raises(sync.SyncError) as info:
        sync.rebase(write, taken)
    assert str(info.value) == ('refusing to remove 172.31.199.194 (pod default/new-pod) from SpiderIPPool worker-eth0-v4: '
                               'in use; move or delete the pod first')
    edited = copy.deepcopy(listed)
    edited['spec']['ips'] = ['172.31.199.190']
    with pytest.raises(sync.SyncError, match='^SpiderIPPool worker-eth0-v4 was changed by another writer while this run was writing it; run again$'):
        sync.rebase(write, edited)
    going = dict(listed, metadata=dict(listed['metadata'], deletionTimestamp='2026-12-06T00:00:00Z'))
    with pytest.raises(sync.SyncError, match='^SpiderIPPool worker-eth0-v4 is being deleted'):
        sync.rebase(write, going)


def test_the_growth_of_a_split_update_expects_the_shrunk_spec():
    current = [as_stored(o) for o in desired()]
    phases, listed = conflicting_update(current, ['172.31.199.191-172.31.199.195'])
    shrink, grow = phases[0][0], phases[1][0]
    assert shrink['then'] is grow
    after_shrink = copy.deepcopy(listed)
    after_shrink['spec']['ips'] = shrink['body']['spec']['ips']
    after_shrink['metadata']['resourceVersion'] = '12'
    assert sync.rebase(grow, after_shrink)['metadata']['resourceVersion'] == '12'
    with pytest.raises(sync.SyncError, match='changed by another writer'):
        sync.rebase(grow, listed)       # the shrink's result is what the growth must find


@pytest.mark.parametrize('bad, message', [
    ({'kind': 'ConfigMap', 'apiVersion': 'v1'},
     "objects[0]: objects may only be spiderpool.spidernet.io/v2beta1 SpiderIPPool or SpiderMultusConfig, got 'ConfigMap'"),
    ({'kind': 'SpiderIPPool', 'apiVersion': sync.API_VERSION, 'metadata': {}}, 'objects[0]: SpiderIPPool without metadata.name or spec'),
    ({'apiVersion': sync.API_VERSION, 'metadata': {'name': 'p1'}}, "objects[0] (p1): objects may only be "
     "spiderpool.spidernet.io/v2beta1 SpiderIPPool or SpiderMultusConfig, got None"),
    ({'kind': 'SpiderIPPool', 'apiVersion': sync.API_VERSION, 'metadata': {'name': 'a', 'namespace': 'x'}, 'spec': {}},
     'SpiderIPPool a: a SpiderMultusConfig needs metadata.namespace, a SpiderIPPool must not have one'),
])
def test_bad_desired_objects(bad, message):
    with pytest.raises(sync.SyncError) as info:
        sync.plan_sync([bad], [], [], OWNER)
    assert str(info.value) == message
    with pytest.raises(sync.SyncError, match='SpiderIPPool master-eth0-v4 is listed twice'):
        sync.plan_sync(desired() + desired()[2:3], [], [], OWNER)


def test_allocated_ips_parsing():
    assert sync.allocated_ips({}) == {}
    assert sync.allocated_ips({'status': {'allocatedIPs': None}}) == {}
    assert sync.allocated_ips({'status': {'allocatedIPs': '{"10.0.0.5": {"pod": "ns/p", "podUid": "u"}}'}}) == {'10.0.0.5': 'ns/p'}


def fake_writes(names, phase=3):
    """Pool creates of ``names``, as ``writes`` lays them out."""
    changes = [{'action': 'create', 'kind': sync.POOL, 'name': name, 'body': {}} for name in names]
    return changes, [{'change': c, 'verb': 'create', 'body': {}, 'phase': phase} for c in changes]


class Recorder:
    """A write function that records how many writes ran at once and fails on chosen names."""

    def __init__(self, fail=(), fatal=(), delay=0.01):
        self.fail, self.fatal, self.delay = set(fail), set(fatal), delay
        self.lock = threading.Lock()
        self.running = self.peak = 0
        self.made = []

    def __call__(self, write):
        name = write['change']['name']
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            # Later names finish first: the report's order must not depend on completion order.
            time.sleep(self.delay * (1 + (hash(name) % 3)))
            if name in self.fatal:
                raise sync.WriteError('create %s failed: connection refused' % name, fatal=True)
            if name in self.fail:
                raise sync.WriteError('create %s failed (HTTP 422): denied' % name)
            with self.lock:
                self.made.append(name)
        finally:
            with self.lock:
                self.running -= 1


def test_run_phases_bounds_the_writes_in_flight():
    _changes, phase = fake_writes(['p%02d' % i for i in range(40)])
    for workers in (1, 4, 16):
        recorder = Recorder()
        report = sync.run_phases([phase], recorder, workers)
        assert recorder.peak == workers
        assert [w['change']['name'] for w in report['done']] == ['p%02d' % i for i in range(40)]
        assert report['failed'] == [] and report['skipped'] == []


def test_run_phases_tries_every_write_of_a_phase_and_orders_errors_by_object():
    changes, phase = fake_writes(['p%02d' % i for i in range(30)])
    recorder = Recorder(fail=['p25', 'p03', 'p17'])
    report = sync.run_phases([list(reversed(phase))], recorder, 8)
    assert [message for _w, message in report['failed']] == [
        'create p03 failed (HTTP 422): denied', 'create p17 failed (HTTP 422): denied', 'create p25 failed (HTTP 422): denied']
    assert len(report['done']) == 27 and report['skipped'] == []
    assert sorted(recorder.made) == [w['change']['name'] for w in report['done']]
    applied = sync.applied_changes(changes, report)
    assert [c['name'] for c in applied] == sorted(recorder.made)
    message = sync.failure_message(changes, report)
    assert message == ('3 of 30 writes failed: create p03 failed (HTTP 422): denied; create p17 failed (HTTP 422): denied; '
                       'create p25 failed (HTTP 422): denied. Applied: 27 of 30 changes; a re-run makes the rest once the cause is fixed')


def test_a_failed_phase_is_the_last_and_a_fatal_error_stops_new_writes():
    _deletes, first = fake_writes(['gone-a', 'gone-b'], phase=1)
    _creates, second = fake_writes(['new-a', 'new-b'], phase=3)
    settled = []
    report = sync.run_phases([first, second], Recorder(fail=['gone-b']), 4, settled.append)
    assert [w['change']['name'] for w in report['done']] == ['gone-a']
    assert [w['change']['name'] for w in report['skipped']] == ['new-a', 'new-b']
    assert settled == []                                   # no settling after a failed phase
    report = sync.run_phases([first, second], Recorder(), 4, settled.append)
    assert len(report['done']) == 4 and settled == [first, second]
    # One at a time: after the fatal error nothing more starts, whatever the phase.
    changes, phase = fake_writes(['a', 'b', 'c', 'd'])
    recorder = Recorder(fatal=['b'])
    report = sync.run_phases([phase, second], recorder, 1)
    assert recorder.made == ['a']
    assert [w['change']['name'] for w in report['skipped']] == ['c', 'd', 'new-a', 'new-b']
    assert sync.failure_message(changes, report) == ('1 of 6 writes failed: create b failed: connection refused. '
                                                     'Applied: SpiderIPPool a; a re-run makes the rest once the cause is fixed')


def test_a_split_update_is_applied_only_with_both_halves_and_long_error_lists_are_cut():
    current = [as_stored(o) for o in desired()]
    wanted = desired()
    pools = {o['metadata']['name']: o for o in wanted}
    pools['master-eth0-v4']['spec']['ips'] = ['172.31.199.186-172.31.199.190']
    pools['worker-eth0-v4']['spec']['ips'] = ['172.31.199.191-172.31.199.194']
    changes = run(current, wanted)['changes']
    phases = sync.writes(changes)
    report = sync.run_phases(phases, Recorder(fail=['worker-eth0-v4']), 2)
    assert [(w['verb'], w['change']['name']) for w in report['done']] == [('replace', 'master-eth0-v4')]   # the shrink
    assert sync.applied_changes(changes, report) == []
    names, phase = fake_writes(['p%02d' % i for i in range(14)])
    report = sync.run_phases([phase], Recorder(fail=[c['name'] for c in names]), 4)
    message = sync.failure_message(names, report)
    assert message.startswith('14 of 14 writes failed: create p00 failed')
    assert 'p09 failed (HTTP 422): denied (and 4 more, all in errors). Applied: 0 of 14 changes;' in message
