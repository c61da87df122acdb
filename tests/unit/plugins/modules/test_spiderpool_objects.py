# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""spiderpool_objects: main() in-process with the real kubernetes client against the Kubernetes double."""
import json
import os
import sys

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.underlay.alicloud.plugins.module_utils.planner import plan
from ansible_collections.underlay.alicloud.plugins.modules import spiderpool_objects
from ansible_collections.underlay.alicloud.tests.unit.plugins.module_utils.test_planner import guide_hosts
from ansible_collections.underlay.alicloud.tests.unit.utils.spiderpool_crds import CRD_DIR

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


@pytest.fixture
def kube(tmp_path, monkeypatch):
    pytest.importorskip('kubernetes')
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'emulator'))
    kube_emulator = pytest.importorskip('kube_emulator')
    for name in ('K8S_AUTH_KUBECONFIG', 'K8S_AUTH_CONTEXT', 'K8S_AUTH_HOST', 'K8S_AUTH_API_KEY'):
        monkeypatch.delenv(name, raising=False)
    double = kube_emulator.KubeEmulator(spiderpool_webhooks=True)
    if os.path.isdir(CRD_DIR):
        double.load_crds(CRD_DIR)
    double.start()
    double.kubeconfig_path = double.write_kubeconfig(str(tmp_path / 'kubeconfig'))
    yield double
    double.stop()


def run(args, capsys, check_mode=False):
    if check_mode:
        args = dict(args, _ansible_check_mode=True, _ansible_diff=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            spiderpool_objects.main()
    return json.loads(capsys.readouterr().out)


def test_check_mode_validates_with_dry_runs_and_writes_nothing(kube, capsys):
    if not os.path.isdir(CRD_DIR):
        pytest.skip('Spiderpool CRDs not found')
    objects = plan(guide_hosts())['objects']
    result = run({'objects': objects, 'kubeconfig': kube.kubeconfig_path}, capsys, check_mode=True)
    assert result['changed'] and not result.get('failed')
    assert [c['action'] for c in result['changes']] == ['create'] * 6
    assert len(result['diff']) == 6 and result['diff'][2]['after']['spec']['ips'] == ['172.31.199.185-172.31.199.189']
    assert kube.objects('SpiderIPPool') == []
    assert kube.request_counts()['total'] == result['api_requests'] == 2 + 6
    # For real, then again: the second run is unchanged and only lists.
    assert run({'objects': objects, 'kubeconfig': kube.kubeconfig_path}, capsys)['changed']
    again = run({'objects': objects, 'kubeconfig': kube.kubeconfig_path}, capsys)
    assert (again['changed'], again['unchanged'], again['api_requests']) == (False, 6, 2)


def test_missing_crds_and_missing_kubeconfig(kube, capsys, tmp_path):
    objects = plan(guide_hosts())['objects']
    if not os.path.isdir(CRD_DIR):
        result = run({'objects': objects, 'kubeconfig': kube.kubeconfig_path}, capsys)
        assert result['failed'] and 'is not served by the API server: install Spiderpool (its CRDs) first' in result['msg']
    result = run({'objects': objects, 'kubeconfig': str(tmp_path / 'nope')}, capsys)
    assert result['failed'] and result['msg'].startswith('cannot load a kubeconfig (%s)' % (tmp_path / 'nope'))
    assert '\n' not in result['msg']


def test_api_refusal_fails_that_object_alone_in_one_line(kube, capsys):
    if not os.path.isdir(CRD_DIR):
        pytest.skip('Spiderpool CRDs not found')
    objects = plan(guide_hosts())['objects']
    objects[2]['spec']['subnet'] = '172.31.199.0/20'        # not canonical: the webhook refuses it
    objects[3]['spec']['subnet'] = '192.168.0.1/24'
    # In check mode every write is validated by a dry run: both refusals, in name order, nothing written.
    checked = run({'objects': objects, 'kubeconfig': kube.kubeconfig_path}, capsys, check_mode=True)
    assert checked['failed'] and [e['object'] for e in checked['errors']] == ['SpiderIPPool master-eth0-v4', 'SpiderIPPool master-eth1-v4']
    assert checked['msg'].startswith('2 of 6 dry runs failed: dry-run create SpiderIPPool master-eth0-v4 failed (HTTP ')
    assert checked['msg'].endswith('. Nothing was written (check mode)')
    assert kube.objects('SpiderIPPool') == []
    result = run({'objects': objects, 'kubeconfig': kube.kubeconfig_path}, capsys)
    assert result['failed'] and result['changed'] and '\n' not in result['msg']
    assert result['msg'].startswith('2 of 6 writes failed: create SpiderIPPool master-eth0-v4 failed (HTTP ')
    assert '; create SpiderIPPool master-eth1-v4 failed (HTTP ' in result['msg']
    assert result['msg'].endswith('Applied: SpiderMultusConfig kube-system/ipvlan-eth0, SpiderMultusConfig kube-system/ipvlan-eth1, '
                                  'SpiderIPPool worker-eth0-v4, SpiderIPPool worker-eth1-v4; '
                                  'a re-run makes the rest once the cause is fixed')
    assert [(e['object'], e['verb']) for e in result['errors']] == [
        ('SpiderIPPool master-eth0-v4', 'create'), ('SpiderIPPool master-eth1-v4', 'create')]
    assert {c['name']: c['applied'] for c in result['changes']} == {
        'ipvlan-eth0': True, 'ipvlan-eth1': True, 'master-eth0-v4': False, 'master-eth1-v4': False,
        'worker-eth0-v4': True, 'worker-eth1-v4': True}
    assert sorted(p['metadata']['name'] for p in kube.objects('SpiderIPPool')) == ['worker-eth0-v4', 'worker-eth1-v4']
    assert result['api_requests'] == 2 + 6                   # no dry run before the writes
    # Fixed, the re-run makes the rest.
    fixed = plan(guide_hosts())['objects']
    again = run({'objects': fixed, 'kubeconfig': kube.kubeconfig_path}, capsys)
    assert [(c['name'], c['applied']) for c in again['changes']] == [('master-eth0-v4', True), ('master-eth1-v4', True)]


def test_workers_must_be_positive(kube, capsys):
    result = run({'objects': [], 'kubeconfig': kube.kubeconfig_path, 'workers': 0}, capsys)
    assert result['failed'] and result['msg'] == 'workers must be at least 1, got 0'


def allocate_then_conflict(kube, pool, ip, pod):
    """Admission hook: Spiderpool records ``ip`` for ``pod`` in ``pool``'s status just before our first
    update of it reaches the store, so that update carries a stale resourceVersion (HTTP 409)."""
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'emulator'))
    from kube_store import ApiError  # pylint: disable=import-outside-toplevel
    raced = []

    def hook(store, op, res, obj, old):
        if op != 'UPDATE' or res.kind != 'SpiderIPPool' or obj['metadata']['name'] != pool or raced:
            return
        raced.append(pool)
        status = dict(old.get('status') or {}, allocatedIPCount=1,
                      allocatedIPs=json.dumps({ip: {'pod': pod, 'podUid': 'uid-1'}}))
        store.update(res, None, pool, dict(old, status=status), subresource='status')
        raise ApiError(409, 'Conflict', 'Operation cannot be fulfilled on spiderippools.spiderpool.spidernet.io "%s": the object '
                       'has been modified; please apply your changes to the latest version and try again' % pool)
    kube.store.admission.append(hook)
    return raced


def test_an_update_that_meets_a_status_write_is_made_on_the_fresh_pool(kube, capsys):
    if not os.path.isdir(CRD_DIR):
        pytest.skip('Spiderpool CRDs not found')
    objects = plan(guide_hosts())['objects']
    assert run({'objects': objects, 'kubeconfig': kube.kubeconfig_path}, capsys)['changed']
    pool = next(o for o in objects if o['metadata']['name'] == 'worker-eth0-v4')
    pool['spec']['ips'] = ['172.31.199.190-172.31.199.195']
    raced = allocate_then_conflict(kube, 'worker-eth0-v4', '172.31.199.191', 'default/app-1')
    result = run({'objects': objects, 'kubeconfig': kube.kubeconfig_path}, capsys)
    assert raced and result['changed'] and not result.get('failed')
    assert [(c['name'], c['applied']) for c in result['changes']] == [('worker-eth0-v4', True)]
    assert result['api_requests'] == 2 + 3          # lists, the refused PUT, a GET, the PUT
    stored = next(o for o in kube.objects('SpiderIPPool') if o['metadata']['name'] == 'worker-eth0-v4')
    assert stored['spec']['ips'] == ['172.31.199.190-172.31.199.195']
    assert '172.31.199.191' in json.loads(stored['status']['allocatedIPs'])


def test_an_update_that_would_drop_an_address_allocated_meanwhile_is_refused(kube, capsys):
    if not os.path.isdir(CRD_DIR):
        pytest.skip('Spiderpool CRDs not found')
    objects = plan(guide_hosts())['objects']
    run({'objects': objects, 'kubeconfig': kube.kubeconfig_path}, capsys)
    pool = next(o for o in objects if o['metadata']['name'] == 'worker-eth0-v4')
    before = list(pool['spec']['ips'])
    pool['spec']['ips'] = ['172.31.199.190']
    allocate_then_conflict(kube, 'worker-eth0-v4', '172.31.199.193', 'default/new-pod')
    result = run({'objects': objects, 'kubeconfig': kube.kubeconfig_path}, capsys)
    assert result['failed'] and not result['changed']
    assert result['msg'] == ('1 of 1 writes failed: refusing to remove 172.31.199.193 (pod default/new-pod) from SpiderIPPool '
                             'worker-eth0-v4: in use; move or delete the pod first. Applied: 0 of 1 changes; a re-run makes '
                             'the rest once the cause is fixed')
    stored = next(o for o in kube.objects('SpiderIPPool') if o['metadata']['name'] == 'worker-eth0-v4')
    assert stored['spec']['ips'] == before


def test_a_concurrent_run_creating_the_same_pool_is_no_error_a_different_one_is(kube, capsys):
    if not os.path.isdir(CRD_DIR):
        pytest.skip('Spiderpool CRDs not found')
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'emulator'))
    from kube_store import ApiError  # pylint: disable=import-outside-toplevel
    objects = plan(guide_hosts())['objects']
    # Another run creates master-eth0-v4 as planned and worker-eth1-v4 with one address only, each just
    # before this run's create of it reaches the store.
    theirs = {o['metadata']['name']: json.loads(json.dumps(o)) for o in objects if o['metadata']['name'] in ('master-eth0-v4', 'worker-eth1-v4')}
    theirs['worker-eth1-v4']['spec']['ips'] = [theirs['worker-eth1-v4']['spec']['ips'][0].split('-')[0]]

    def other_run_first(store, op, res, obj, old):
        mine = theirs.pop(obj['metadata']['name'], None) if op == 'CREATE' else None
        if mine:
            store.create(res, None, mine)
            raise ApiError(409, 'AlreadyExists', 'spiderippools.spiderpool.spidernet.io "%s" already exists' % obj['metadata']['name'])
    kube.store.admission.append(other_run_first)
    result = run({'objects': objects, 'kubeconfig': kube.kubeconfig_path}, capsys)
    assert not theirs and result['failed'] and [e['object'] for e in result['errors']] == ['SpiderIPPool worker-eth1-v4']
    assert result['errors'][0]['msg'] == 'SpiderIPPool worker-eth1-v4 was changed by another writer while this run was writing it; run again'
    assert [c['name'] for c in result['changes'] if c['applied']] == ['ipvlan-eth0', 'ipvlan-eth1', 'master-eth0-v4', 'master-eth1-v4',
                                                                      'worker-eth0-v4']
