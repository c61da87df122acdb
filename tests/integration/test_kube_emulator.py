"""Fidelity tests of the Kubernetes API double through the real kubernetes client, kubernetes.core
modules (ansible-playbook subprocesses), helm and kubectl."""
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from kubernetes import client, config, dynamic
from kubernetes.dynamic.exceptions import ApiException

from kube_fixtures import EMULATOR_DIR, ROOT, SPIDERPOOL_CRDS, kube, kube_factory, spiderpool_crds  # noqa: F401  pylint: disable=unused-import

POOL_API = 'spiderpool.spidernet.io/v2beta1'


def dyn(double):
    """A DynamicClient bound to the double (own ApiClient: no global configuration)."""
    conf = client.Configuration()
    config.load_kube_config(config_file=double.kubeconfig, client_configuration=conf)
    return dynamic.DynamicClient(client.ApiClient(configuration=conf))


def api_error(call):
    with pytest.raises(ApiException) as info:
        call()
    return info.value.status, json.loads(info.value.body)


def configmap(name, labels=None, data=None):
    return {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': name, 'labels': labels or {}},
            'data': data or {'k': 'v'}}


def pool(name, subnet='10.20.0.0/24', ips=None, **spec):
    body = {'apiVersion': POOL_API, 'kind': 'SpiderIPPool', 'metadata': {'name': name},
            'spec': dict({'subnet': subnet}, **spec)}
    if ips is not None:
        body['spec']['ips'] = ips
    return body


# ---------------------------------------------------------------------------------------------
# kubernetes client

def test_crud_metadata_and_errors(kube):  # noqa: F811
    dc = dyn(kube)
    cms = dc.resources.get(api_version='v1', kind='ConfigMap')
    created = cms.create(body=configmap('a', {'app': 'x'}), namespace='default').to_dict()
    meta = created['metadata']
    assert meta['uid'] and meta['creationTimestamp'] and int(meta['resourceVersion']) > 0
    assert 'generation' not in meta
    code, body = api_error(lambda: cms.create(body=configmap('a'), namespace='default'))
    assert (code, body['kind'], body['reason'], body['details']['name']) == (409, 'Status', 'AlreadyExists', 'a')
    code, body = api_error(lambda: cms.get(name='nope', namespace='default'))
    assert (code, body['reason']) == (404, 'NotFound')
    code, body = api_error(lambda: cms.create(body=configmap('b'), namespace='missing-ns'))
    assert code == 404 and 'namespaces "missing-ns" not found' in body['message']
    # replace with a stale resourceVersion -> 409 Conflict; with the current one -> works, rv grows
    stale = dict(created, data={'k': 'new'})
    updated = cms.replace(body=stale, namespace='default').to_dict()
    assert int(updated['metadata']['resourceVersion']) > int(meta['resourceVersion'])
    code, body = api_error(lambda: cms.replace(body=dict(created, data={'k': 'other'}), namespace='default'))
    assert (code, body['reason']) == (409, 'Conflict')
    # a no-op write does not bump the resourceVersion
    again = cms.patch(name='a', namespace='default', body={'data': {'k': 'new'}},
                      content_type='application/merge-patch+json').to_dict()
    assert again['metadata']['resourceVersion'] == updated['metadata']['resourceVersion']
    cms.delete(name='a', namespace='default')
    assert kube.get('ConfigMap', 'a', 'default') is None


def test_list_kind_and_selectors(kube):  # noqa: F811
    dc = dyn(kube)
    cms = dc.resources.get(api_version='v1', kind='ConfigMap')
    for name, labels in (('one', {'tier': 'web', 'env': 'prod'}), ('two', {'tier': 'db', 'env': 'prod'}),
                         ('three', {'tier': 'web'})):
        cms.create(body=configmap(name, labels), namespace='default')

    def names(**kw):
        listed = cms.get(namespace='default', **kw).to_dict()
        assert listed['kind'] == 'ConfigMapList' and listed['apiVersion'] == 'v1'
        assert listed['metadata']['resourceVersion']
        return sorted(i['metadata']['name'] for i in listed['items'])

    assert names(label_selector='tier=web') == ['one', 'three']
    assert names(label_selector='tier==web,env=prod') == ['one']
    assert names(label_selector='tier!=web') == ['two']
    assert names(label_selector='tier in (db, cache)') == ['two']
    assert names(label_selector='tier notin (db),tier') == ['one', 'three']
    assert names(label_selector='!env,tier') == ['three']
    assert names(label_selector='env') == ['one', 'two']
    assert names(field_selector='metadata.name=two') == ['two']
    assert names(field_selector='metadata.name!=two,metadata.namespace=default', label_selector='tier') == [
        'one', 'three']
    # items of built-in lists carry no apiVersion/kind, as the real apiserver's JSON
    # (the dynamic client fills them in again)
    code, raw = kube.http('GET', '/api/v1/namespaces/default/configmaps')
    assert code == 200 and raw['kind'] == 'ConfigMapList' and 'kind' not in raw['items'][0]
    assert cms.get(namespace='default').to_dict()['items'][0]['kind'] == 'ConfigMap'
    cms.delete(namespace='default', label_selector='tier=web')
    assert names() == ['two']


def test_discovery_and_scope(kube):  # noqa: F811
    dc = dyn(kube)
    for api_version, kind, namespaced in (('v1', 'Namespace', False), ('v1', 'Pod', True), ('v1', 'Node', False),
                                          ('apps/v1', 'DaemonSet', True), ('batch/v1', 'Job', True),
                                          ('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', False),
                                          ('coordination.k8s.io/v1', 'Lease', True),
                                          ('apiextensions.k8s.io/v1', 'CustomResourceDefinition', False)):
        assert dc.resources.get(api_version=api_version, kind=kind).namespaced is namespaced
    roles = dc.resources.get(api_version='rbac.authorization.k8s.io/v1', kind='ClusterRole')
    created = roles.create(body={'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'ClusterRole',
                                 'metadata': {'name': 'r', 'namespace': 'ignored'}, 'rules': []}).to_dict()
    assert 'namespace' not in created['metadata']


def test_cli_admin_endpoints_and_latency(tmp_path):
    kubeconfig = tmp_path / 'kc'
    table = tmp_path / 'exec.yaml'
    table.write_text('rules:\n  - {pod: ".*", command: "^hostname$", stdout: "{node}\\n", template: true}\n')
    crds = ['--crds', SPIDERPOOL_CRDS, '--spiderpool-webhooks'] if os.path.isdir(SPIDERPOOL_CRDS) else []
    proc = subprocess.Popen([sys.executable, os.path.join(EMULATOR_DIR, 'kube_emulator.py'), '--listen',
                             '127.0.0.1:0', '--kubeconfig', str(kubeconfig), '--nodes', 'n1,n2', '--simulate-kubelet',
                             '--exec-table', str(table), '--latency', '150'] + crds, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith('listening on http://127.0.0.1:')
        url = line.split()[-1]
        conf = json.loads(kubeconfig.read_text())
        assert conf['clusters'][0]['cluster']['server'] == url and conf['users'][0]['user']['token']
        conf_obj = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=conf_obj)
        core = client.CoreV1Api(client.ApiClient(conf_obj))
        started = time.monotonic()
        nodes = core.list_node().items
        assert time.monotonic() - started >= 0.15
        assert sorted(n.metadata.name for n in nodes) == ['n1', 'n2']
        core.create_namespaced_pod('default', {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'p'},
                                               'spec': {'nodeName': 'n2', 'containers': [{'name': 'c',
                                                                                          'image': 'i'}]}})
        from kubernetes.stream import stream  # pylint: disable=import-outside-toplevel
        assert stream(core.connect_get_namespaced_pod_exec, 'p', 'default', command=['hostname'], stderr=True,
                      stdin=False, stdout=True, tty=False) == 'n2\n'

        def admin(method, path, body=None):
            req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body else None)
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read())

        stats = admin('GET', '/_emulator/stats')
        assert stats['requests']['list nodes'] == 1 and stats['requests']['create pods'] == 1
        assert stats['exec_count'] == 1 and stats['execs'][0]['pod'] == 'p'
        assert admin('POST', '/_emulator/reset-stats') == {'ok': True}
        assert admin('GET', '/_emulator/stats')['total'] == 0
        dump = admin('GET', '/_emulator/objects?kind=Pod&namespace=default')
        assert [p['status']['podIP'] for p in dump] == ['10.244.1.2']
        admin('PUT', '/_emulator/exec-table', [{'pod': 'p', 'command': 'hostname', 'stdout': 'replaced'}])
        assert stream(core.connect_get_namespaced_pod_exec, 'p', 'default', command=['hostname'], stderr=True,
                      stdin=False, stdout=True, tty=False) == 'replaced'
        if crds:  # CRDs registered at start, webhooks on: the pool comes back merged
            created = client.CustomObjectsApi(core.api_client).create_cluster_custom_object(
                'spiderpool.spidernet.io', 'v2beta1', 'spiderippools', pool('c', ips=['10.20.0.2', '10.20.0.1']))
            assert created['spec']['ips'] == ['10.20.0.1-10.20.0.2']
    finally:
        proc.terminate()
        proc.wait(10)


def test_patch_flavours_and_dry_run(kube):  # noqa: F811
    dc = dyn(kube)
    deps = dc.resources.get(api_version='apps/v1', kind='Deployment')
    body = {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': 'web', 'namespace': 'default'},
            'spec': {'selector': {'matchLabels': {'app': 'web'}}, 'template': {
                'metadata': {'labels': {'app': 'web'}},
                'spec': {'containers': [{'name': 'a', 'image': 'img:1', 'env': [{'name': 'X', 'value': '1'}],
                                         'ports': [{'containerPort': 80}]}]}}}}
    # dryRun create: defaults shown, nothing stored
    dry = deps.create(body=body, namespace='default', dry_run='All').to_dict()
    assert dry['spec']['replicas'] == 1 and dry['spec']['strategy']['type'] == 'RollingUpdate'
    assert dry['spec']['template']['spec']['containers'][0]['imagePullPolicy'] == 'IfNotPresent'
    assert kube.get('Deployment', 'web', 'default') is None
    created = deps.create(body=body, namespace='default').to_dict()
    assert created['metadata']['generation'] == 1
    # strategic merge: containers merge by name, env by name, ports by containerPort
    smp = {'spec': {'template': {'spec': {'containers': [
        {'name': 'a', 'env': [{'name': 'Y', 'value': '2'}], 'ports': [{'containerPort': 81}]},
        {'name': 'b', 'image': 'img:2'}]}}}}
    patched = deps.patch(name='web', namespace='default', body=smp,
                         content_type='application/strategic-merge-patch+json').to_dict()
    containers = patched['spec']['template']['spec']['containers']
    assert [c['name'] for c in containers] == ['a', 'b'] and containers[0]['image'] == 'img:1'
    assert [e['name'] for e in containers[0]['env']] == ['X', 'Y']
    assert [p['containerPort'] for p in containers[0]['ports']] == [80, 81]
    assert patched['metadata']['generation'] == 2
    # the same change as merge patch replaces the list
    merged = deps.patch(name='web', namespace='default', content_type='application/merge-patch+json',
                        body={'spec': {'template': {'spec': {'containers': [{'name': 'c', 'image': 'img:3'}]}}}})
    assert [c['name'] for c in merged.to_dict()['spec']['template']['spec']['containers']] == ['c']
    # json patch, and dryRun on patch changes nothing
    jp = [{'op': 'replace', 'path': '/spec/replicas', 'value': 3}]
    assert deps.patch(name='web', namespace='default', body=jp, content_type='application/json-patch+json',
                      dry_run='All').spec.replicas == 3
    assert kube.get('Deployment', 'web', 'default')['spec']['replicas'] == 1
    assert deps.patch(name='web', namespace='default', body=jp,
                      content_type='application/json-patch+json').spec.replicas == 3
    code, status = api_error(lambda: deps.patch(
        name='web', namespace='default', content_type='application/json-patch+json',
        body=[{'op': 'remove', 'path': '/spec/nothing'}]))
    assert code == 422 and status['reason'] == 'Invalid'
    # dryRun delete keeps the object, given as a query parameter or in DeleteOptions
    deps.delete(name='web', namespace='default', dry_run='All')
    assert kube.http('DELETE', '/apis/apps/v1/namespaces/default/deployments/web',
                     {'kind': 'DeleteOptions', 'apiVersion': 'v1', 'dryRun': ['All']})[0] == 200
    assert kube.get('Deployment', 'web', 'default') is not None


def register_crds(dc, directory):
    crds = dc.resources.get(api_version='apiextensions.k8s.io/v1', kind='CustomResourceDefinition')
    import yaml  # pylint: disable=import-outside-toplevel
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), encoding='utf-8') as handle:
            crds.create(body=yaml.safe_load(handle))
    return crds


def test_spiderpool_crd_schema(kube, spiderpool_crds):  # noqa: F811
    dc = dyn(kube)
    crds = register_crds(dc, spiderpool_crds)
    crd = crds.get(name='spiderippools.spiderpool.spidernet.io').to_dict()
    conditions = {c['type']: c['status'] for c in crd['status']['conditions']}
    assert conditions == {'Established': 'True', 'NamesAccepted': 'True'}
    dc.resources.invalidate_cache()
    pools = dc.resources.get(api_version=POOL_API, kind='SpiderIPPool')
    assert pools.namespaced is False
    created = pools.create(body=pool('p1', ips=['10.20.0.10-10.20.0.12'], unknownField='x')).to_dict()
    assert 'unknownField' not in created['spec']
    assert created['spec']['default'] is False and created['spec']['disable'] is False
    assert created['metadata']['generation'] == 1
    code, status = api_error(lambda: pools.create(body=pool('bad', subnet=None, ipVersion=5)))
    assert (code, status['reason']) == (422, 'Invalid')
    fields = {c['field']: c['reason'] for c in status['details']['causes']}
    assert fields == {'spec.subnet': 'FieldValueTypeInvalid', 'spec.ipVersion': 'FieldValueNotSupported'}
    code, status = api_error(lambda: pools.create(body={'apiVersion': POOL_API, 'kind': 'SpiderIPPool',
                                                        'metadata': {'name': 'bad2'}, 'spec': {'ips': ['x']}}))
    assert [c['field'] for c in status['details']['causes']] == ['spec.subnet']
    code, status = api_error(lambda: pools.create(body=pool('bad3', ips='10.20.0.1')))
    assert status['details']['causes'][0]['field'] == 'spec.ips'
    pools.create(body=pool('dry'), dry_run='All')
    assert kube.get('SpiderIPPool', 'dry') is None
    # strategic merge is refused for custom resources
    code, status = api_error(lambda: pools.patch(name='p1', body={'spec': {'default': True}},
                                                 content_type='application/strategic-merge-patch+json'))
    assert (code, status['reason']) == (415, 'UnsupportedMediaType')
    # status subresource: main writes ignore status, /status writes only status, generation follows spec
    pools.patch(name='p1', body={'status': {'allocatedIPCount': 5}}, content_type='application/merge-patch+json')
    assert 'allocatedIPCount' not in (kube.get('SpiderIPPool', 'p1').get('status') or {})
    current = kube.get('SpiderIPPool', 'p1')
    current['status'] = {'allocatedIPCount': 1}
    current['spec']['default'] = True
    after = pools.status.replace(body=current).to_dict()
    assert after['status']['allocatedIPCount'] == 1 and after['spec']['default'] is False
    assert after['metadata']['generation'] == 1
    after = pools.patch(name='p1', body={'spec': {'default': True}}, content_type='application/merge-patch+json')
    assert after.metadata.generation == 2 and after.status.allocatedIPCount == 1
    # SpiderMultusConfig: int32 bound and enum from the real schema
    smcs = dc.resources.get(api_version=POOL_API, kind='SpiderMultusConfig')
    code, status = api_error(lambda: smcs.create(namespace='default', body={
        'apiVersion': POOL_API, 'kind': 'SpiderMultusConfig', 'metadata': {'name': 'm'},
        'spec': {'cniType': 'bogus', 'ipvlan': {'master': ['eth0'], 'vlanID': 5000}}}))
    assert sorted(c['field'] for c in status['details']['causes']) == ['spec.cniType', 'spec.ipvlan.vlanID']
    # deleting the CRD removes the resource and its objects
    crds.delete(name='spiderippools.spiderpool.spidernet.io')
    assert kube.objects('SpiderIPPool') == []


def test_finalizers_owner_gc_and_watch(kube):  # noqa: F811
    dc = dyn(kube)
    cms = dc.resources.get(api_version='v1', kind='ConfigMap')
    owner = cms.create(namespace='default', body=dict(configmap('owner'), metadata={
        'name': 'owner', 'finalizers': ['example.com/hold']})).to_dict()
    cms.create(namespace='default', body=dict(configmap('child'), metadata={'name': 'child', 'ownerReferences': [
        {'apiVersion': 'v1', 'kind': 'ConfigMap', 'name': 'owner', 'uid': owner['metadata']['uid']}]}))
    events = []
    start_rv = cms.get(namespace='default').metadata.resourceVersion
    deleting = cms.delete(name='owner', namespace='default').to_dict()
    assert deleting['metadata']['deletionTimestamp']
    assert kube.get('ConfigMap', 'child', 'default') is not None
    cms.patch(name='owner', namespace='default', body={'metadata': {'finalizers': None}},
              content_type='application/merge-patch+json')
    assert kube.get('ConfigMap', 'owner', 'default') is None
    assert kube.get('ConfigMap', 'child', 'default') is None
    for event in cms.watch(namespace='default', resource_version=start_rv, timeout=1):
        events.append((event['type'], event['object'].metadata.name))
    assert events[0] == ('MODIFIED', 'owner') and ('DELETED', 'owner') in events and ('DELETED', 'child') in events
    # without resourceVersion: ADDED for what exists, then the changes as they happen, until timeoutSeconds
    cms.create(namespace='default', body=configmap('late'))
    seen = []
    started = time.monotonic()
    watcher = threading.Thread(target=lambda: seen.extend(
        e['type'] for e in cms.watch(namespace='default', field_selector='metadata.name=late', timeout=1)))
    watcher.start()
    time.sleep(0.3)
    cms.patch(name='late', namespace='default', body={'data': {'k': 'z'}}, content_type='application/merge-patch+json')
    cms.create(namespace='default', body=configmap('other'))
    watcher.join(5)
    assert seen == ['ADDED', 'MODIFIED'] and 0.9 < time.monotonic() - started < 10
    # with a label selector, an update that makes an object stop (start) matching is seen as DELETED (ADDED)
    watched = []

    def follow():
        for event in cms.watch(namespace='default', label_selector='w=1', timeout=1):
            watched.append((event['type'], event['object'].metadata.name))

    watcher = threading.Thread(target=follow)
    watcher.start()
    time.sleep(0.3)
    for value in ('1', '2'):
        cms.patch(name='other', namespace='default', body={'metadata': {'labels': {'w': value}}},
                  content_type='application/merge-patch+json')
    watcher.join(5)
    assert watched == [('ADDED', 'other'), ('DELETED', 'other')]


def test_server_side_apply(kube):  # noqa: F811
    dc = dyn(kube)
    cms = dc.resources.get(api_version='v1', kind='ConfigMap')
    body = configmap('ssa', data={'a': '1', 'b': '2'})
    first = cms.server_side_apply(body=body, namespace='default', field_manager='tester').to_dict()
    again = cms.server_side_apply(body=body, namespace='default', field_manager='tester').to_dict()
    assert first['metadata']['resourceVersion'] == again['metadata']['resourceVersion']
    assert any(m['manager'] == 'tester' and m['operation'] == 'Apply' for m in again['metadata']['managedFields'])
    # a field this manager applied before and no longer applies is removed; others' fields stay
    cms.patch(name='ssa', namespace='default', body={'data': {'c': '3'}}, content_type='application/merge-patch+json')
    shrunk = cms.server_side_apply(body=configmap('ssa', data={'a': '1'}), namespace='default',
                                   field_manager='tester').to_dict()
    assert shrunk['data'] == {'a': '1', 'c': '3'}
    code, status = api_error(lambda: cms.server_side_apply(body=body, namespace='default', field_manager=None))
    assert code == 422
    # another manager's field: same value is shared, a different value conflicts unless forced
    cms.server_side_apply(body=configmap('ssa', data={'c': '3'}), namespace='default', field_manager='other')
    code, status = api_error(lambda: cms.server_side_apply(body=configmap('ssa', data={'a': '9'}),
                                                           namespace='default', field_manager='other'))
    assert (code, status['reason']) == (409, 'Conflict')
    assert status['message'] == 'Apply failed with 1 conflict: conflict with "tester" using v1: .data.a'
    assert status['details']['causes'] == [{'reason': 'FieldManagerConflict', 'message': 'conflict with "tester" '
                                            'using v1', 'field': '.data.a'}]
    forced = cms.server_side_apply(body=configmap('ssa', data={'a': '9'}), namespace='default',
                                   field_manager='other', force_conflicts=True).to_dict()
    assert forced['data']['a'] == '9'
    owners = {m['manager']: m['fieldsV1'] for m in forced['metadata']['managedFields']}
    assert owners['other']['f:data'] == {'f:a': {}} and 'f:a' not in owners['tester'].get('f:data', {})
    # a plain update takes ownership of what it changed, so applying over it now conflicts
    cms.patch(name='ssa', namespace='default', body={'data': {'a': '10'}}, content_type='application/merge-patch+json',
              field_manager='editor')
    code, status = api_error(lambda: cms.server_side_apply(body=configmap('ssa', data={'a': '9'}),
                                                           namespace='default', field_manager='other'))
    assert 'conflict with "editor"' in status['message']


def test_simulated_kubelet_workloads(kube_factory):  # noqa: F811
    double = kube_factory(simulate_kubelet=True, nodes=['n1', 'n2'])
    double.add_node('tainted', taints=[{'key': 'dedicated', 'value': 'x', 'effect': 'NoSchedule'}])
    dc = dyn(double)
    template = {'metadata': {'labels': {'app': 'x'}}, 'spec': {'containers': [{'name': 'c', 'image': 'i:1'}]}}
    apps = {kind: dc.resources.get(api_version='apps/v1', kind=kind)
            for kind in ('Deployment', 'DaemonSet', 'StatefulSet')}
    for kind, extra in (('Deployment', {'replicas': 3}), ('DaemonSet', {}), ('StatefulSet', {'replicas': 2})):
        apps[kind].create(namespace='default', body={
            'apiVersion': 'apps/v1', 'kind': kind, 'metadata': {'name': kind.lower()},
            'spec': dict({'selector': {'matchLabels': {'app': 'x'}}, 'template': template}, **extra)})
    dep = double.get('Deployment', 'deployment', 'default')
    assert dep['status']['readyReplicas'] == 3 and dep['status']['observedGeneration'] == 1
    conditions = {c['type']: c['status'] for c in dep['status']['conditions']}
    assert conditions == {'Available': 'True', 'Progressing': 'True'}
    rs = double.objects('ReplicaSet', 'default')
    assert len(rs) == 1 and rs[0]['metadata']['ownerReferences'][0]['uid'] == dep['metadata']['uid']
    ds = double.get('DaemonSet', 'daemonset', 'default')['status']
    assert ds['desiredNumberScheduled'] == 2 and ds['numberReady'] == 2
    pods = double.objects('Pod', 'default')
    assert len(pods) == 3 + 2 + 2 and all(p['status']['phase'] == 'Running' and p['status']['podIP'] for p in pods)
    assert len({p['status']['podIP'] for p in pods}) == len(pods)
    assert {p['spec']['nodeName'] for p in pods} == {'n1', 'n2'}
    assert sorted(p['metadata']['name'] for p in pods if p['metadata']['name'].startswith('statefulset')) == [
        'statefulset-0', 'statefulset-1']
    # a template change rolls the Deployment onto a new ReplicaSet; generation and observedGeneration follow
    apps['Deployment'].patch(name='deployment', namespace='default', body={'spec': {'template': {'spec': {
        'containers': [{'name': 'c', 'image': 'i:2'}]}}}}, content_type='application/strategic-merge-patch+json')
    dep = double.get('Deployment', 'deployment', 'default')
    assert dep['metadata']['generation'] == 2 and dep['status']['observedGeneration'] == 2
    assert dep['status']['updatedReplicas'] == 3
    images = {c['image'] for p in double.objects('Pod', 'default') if p['metadata']['name'].startswith('deployment')
              for c in p['spec']['containers']}
    assert images == {'i:2'}
    # Jobs complete, Services get cluster IPs, LoadBalancers an ingress IP on request
    dc.resources.get(api_version='batch/v1', kind='Job').create(namespace='default', body={
        'apiVersion': 'batch/v1', 'kind': 'Job', 'metadata': {'name': 'j'},
        'spec': {'template': {'spec': {'restartPolicy': 'Never', 'containers': [{'name': 'c', 'image': 'i'}]}}}})
    job = double.get('Job', 'j', 'default')['status']
    assert job['succeeded'] == 1 and any(c['type'] == 'Complete' and c['status'] == 'True' for c in job['conditions'])
    svc = dc.resources.get(api_version='v1', kind='Service').create(namespace='default', body={
        'apiVersion': 'v1', 'kind': 'Service', 'metadata': {'name': 'lb'},
        'spec': {'type': 'LoadBalancer', 'selector': {'app': 'x'}, 'ports': [{'port': 80}]}}).to_dict()
    assert svc['spec']['clusterIP'] and svc['spec']['ports'][0]['targetPort'] == 80
    double.set_load_balancer_ip('default', 'lb', '203.0.113.7')
    assert double.get('Service', 'lb', 'default')['status']['loadBalancer']['ingress'] == [{'ip': '203.0.113.7'}]
    # the scheduler and kubelet leave Events, found by field selector like kubectl describe does
    box = double.get('Pod', 'statefulset-0', 'default')['metadata']
    events = dc.resources.get(api_version='v1', kind='Event').get(
        namespace='default', field_selector='involvedObject.uid=%s' % box['uid']).to_dict()['items']
    assert [e['reason'] for e in events] == ['Scheduled', 'Started']
    # deleting the Deployment garbage-collects its ReplicaSets and pods
    apps['Deployment'].delete(name='deployment', namespace='default')
    assert not [p for p in double.objects('Pod', 'default') if p['metadata']['name'].startswith('deployment')]
    assert double.objects('ReplicaSet', 'default') == []


def test_exec_through_stream(kube):  # noqa: F811
    from kubernetes.stream import stream  # pylint: disable=import-outside-toplevel
    dc = dyn(kube)
    dc.resources.get(api_version='v1', kind='Pod').create(namespace='default', body={
        'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'box'},
        'spec': {'containers': [{'name': 'c', 'image': 'busybox'}]}})
    kube.set_exec_table([
        {'pod': 'box', 'command': r'^ping -c 1 (?P<dst>\S+)$', 'stdout': 'PING {dst}: 1 packets received\n',
         'template': True},
        {'pod': 'b.*', 'namespace': 'default', 'command': '^false', 'stderr': 'nope\n', 'rc': 3}])
    core = client.CoreV1Api(dc.client)
    out = stream(core.connect_get_namespaced_pod_exec, 'box', 'default', command=['ping', '-c', '1', '10.0.0.9'],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert out == 'PING 10.0.0.9: 1 packets received\n'
    resp = stream(core.connect_get_namespaced_pod_exec, 'box', 'default', command=['false'], stderr=True,
                  stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=5)
    assert resp.read_stderr() == 'nope\n' and resp.returncode == 3
    resp = stream(core.connect_get_namespaced_pod_exec, 'box', 'default', command=['unknown'], stderr=True,
                  stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=5)
    assert resp.returncode == 127 and 'no exec table rule matches' in resp.read_stderr()
    kube.set_pod_log('default', 'box', 'started\n')
    assert core.read_namespaced_pod_log('box', 'default') == 'started\n'
    stats = kube.request_counts()
    assert stats['exec_count'] == 3 and stats['execs'][0]['command'] == ['ping', '-c', '1', '10.0.0.9']
    assert stats['requests']['create pods/exec'] == 3


# ---------------------------------------------------------------------------------------------
# kubernetes.core modules, helm and kubectl as subprocesses

def tool_env(double, tmp_path):
    env = double.env()
    env.update({'PATH': '%s:%s:%s' % (os.path.join(ROOT, '.venv', 'bin'), os.path.join(ROOT, '.cache', 'bin'),
                                      env.get('PATH', '')),
                'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'),
                'ANSIBLE_COLLECTIONS_PATH': os.path.join(ROOT, '.collections'),
                'ANSIBLE_LOCAL_TEMP': str(tmp_path / 'ansible-tmp'), 'ANSIBLE_NOCOLOR': '1',
                'HELM_CACHE_HOME': str(tmp_path / 'helm' / 'cache'), 'HELM_CONFIG_HOME': str(tmp_path / 'helm' / 'cfg'),
                'HELM_DATA_HOME': str(tmp_path / 'helm' / 'data'), 'HOME': str(tmp_path)})
    return env


def run_playbook(double, tmp_path, tasks, extra_vars=None):
    import yaml  # pylint: disable=import-outside-toplevel
    play = [{'name': 'Exercise the Kubernetes double', 'hosts': 'localhost', 'gather_facts': False,
             'vars': dict({'ansible_python_interpreter': sys.executable}, **(extra_vars or {})), 'tasks': tasks}]
    path = tmp_path / 'play.yml'
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    proc = subprocess.run(['ansible-playbook', '-i', 'localhost,', '-c', 'local', str(path)], capture_output=True,
                          text=True, env=tool_env(double, tmp_path), timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


DEPLOYMENT = {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'metadata': {'name': 'web', 'namespace': 'apps',
                                                                          'labels': {'tier': 'front'}},
              'spec': {'replicas': 2, 'selector': {'matchLabels': {'app': 'web'}}, 'template': {
                  'metadata': {'labels': {'app': 'web'}},
                  'spec': {'containers': [{'name': 'web', 'image': 'nginx:1.27', 'ports': [{'containerPort': 80}]}]}}}}


def test_kubernetes_core_modules(kube, tmp_path, spiderpool_crds):  # noqa: F811
    kube.load_crds(spiderpool_crds)
    kube.set_exec_table([{'pod': 'web-.*', 'namespace': 'apps', 'command': '^cat /etc/hostname$',
                          'stdout': '{pod}\n', 'template': True},
                         {'pod': '.*', 'command': '^sh -c exit 4$', 'rc': 4}])
    cm = {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'settings', 'namespace': 'apps',
                                                                'labels': {'tier': 'front'}}, 'data': {'a': '1'}}
    ippool = pool('node1-eth1-v4', ips=['10.20.0.5-10.20.0.7'], gateway='10.20.0.253', nodeName=['node-1'])
    tasks = [
        {'name': 'Namespace', 'kubernetes.core.k8s': {'name': 'apps', 'kind': 'Namespace', 'state': 'present'}},
        {'name': 'Check-mode create', 'kubernetes.core.k8s': {'definition': cm}, 'check_mode': True,
         'register': 'checked'},
        {'name': 'Nothing persisted in check mode', 'kubernetes.core.k8s_info': {
            'kind': 'ConfigMap', 'namespace': 'apps', 'name': 'settings'}, 'register': 'none_yet'},
        {'name': 'Apply', 'kubernetes.core.k8s': {'definition': cm, 'apply': True}, 'register': 'first'},
        {'name': 'Apply again', 'kubernetes.core.k8s': {'definition': cm, 'apply': True}, 'register': 'second'},
        {'name': 'Create-style again', 'kubernetes.core.k8s': {'definition': cm}, 'register': 'third'},
        {'name': 'Modify', 'kubernetes.core.k8s': {'definition': {**cm, 'data': {'a': '2'}}, 'apply': True},
         'register': 'modified'},
        {'name': 'Server-side apply', 'kubernetes.core.k8s': {
            'definition': {**cm, 'metadata': {**cm['metadata'], 'name': 'ssa'}},
            'apply': True, 'server_side_apply': {'field_manager': 'underlay'}}, 'register': 'ssa1'},
        {'name': 'Server-side apply again', 'kubernetes.core.k8s': {
            'definition': {**cm, 'metadata': {**cm['metadata'], 'name': 'ssa'}},
            'apply': True, 'server_side_apply': {'field_manager': 'underlay'}}, 'register': 'ssa2'},
        {'name': 'Deployment and wait', 'register': 'dep',
         'kubernetes.core.k8s': {'definition': DEPLOYMENT, 'wait': True, 'wait_timeout': 30}},
        {'name': 'Select by label', 'kubernetes.core.k8s_info': {
            'kind': 'Pod', 'namespace': 'apps', 'label_selectors': ['app in (web)', '!absent']},
         'register': 'pods'},
        {'name': 'Select by field', 'kubernetes.core.k8s_info': {
            'kind': 'Pod', 'namespace': 'apps', 'field_selectors': ['status.phase=Running', 'spec.nodeName=node-1']},
         'register': 'running'},
        {'name': 'Wait on the Deployment through k8s_info', 'kubernetes.core.k8s_info': {
            'kind': 'Deployment', 'namespace': 'apps', 'name': 'web', 'wait': True, 'wait_timeout': 20,
            'wait_condition': {'type': 'Available', 'status': 'True'}}, 'register': 'waited'},
        {'name': 'Exec', 'kubernetes.core.k8s_exec': {
            'namespace': 'apps', 'pod': '{{ pods.resources[0].metadata.name }}', 'command': 'cat /etc/hostname'},
         'register': 'hostname'},
        {'name': 'Exec failing', 'kubernetes.core.k8s_exec': {
            'namespace': 'apps', 'pod': '{{ pods.resources[0].metadata.name }}', 'command': 'sh -c "exit 4"'},
         'register': 'failing', 'failed_when': False},
        {'name': 'Pool', 'kubernetes.core.k8s': {'definition': ippool, 'apply': True}, 'register': 'pool1'},
        {'name': 'Pool again', 'kubernetes.core.k8s': {'definition': ippool, 'apply': True}, 'register': 'pool2'},
        {'name': 'Invalid pool', 'kubernetes.core.k8s': {'definition': pool('bad', subnet='10.9.0.0/24',
                                                                            ipVersion=5)},
         'register': 'badpool', 'ignore_errors': True},
        {'name': 'Delete', 'register': 'deleted', 'kubernetes.core.k8s': {
            'kind': 'ConfigMap', 'namespace': 'apps', 'name': 'settings', 'state': 'absent', 'wait': True}},
        {'name': 'Delete again', 'register': 'deleted2', 'kubernetes.core.k8s': {
            'kind': 'ConfigMap', 'namespace': 'apps', 'name': 'settings', 'state': 'absent'}},
        {'name': 'Check results', 'ansible.builtin.assert': {'that': [
            'checked is changed', 'none_yet.resources == []',
            'first is changed', 'second is not changed', 'third is not changed', 'modified is changed',
            "modified.result.data.a == '2'", 'ssa1 is changed', 'ssa2 is not changed',
            'dep is changed', 'dep.result.status.readyReplicas == 2',
            'pods.resources | length == 2', 'running.resources | length == 2',
            'waited.resources[0].status.availableReplicas == 2',
            "hostname.stdout == pods.resources[0].metadata.name + '\\n'", 'hostname.rc == 0', 'failing.rc == 4',
            'pool1 is changed', 'pool2 is not changed', 'badpool is failed',
            "'Unsupported value' in badpool.msg or 'Unsupported value' in (badpool.error | default('') | string)",
            'deleted is changed', 'deleted2 is not changed']}},
    ]
    run_playbook(kube, tmp_path, tasks)
    assert kube.get('ConfigMap', 'settings', 'apps') is None
    assert kube.get('ConfigMap', 'ssa', 'apps')['data'] == {'a': '1'}
    assert kube.get('SpiderIPPool', 'node1-eth1-v4')['spec']['ips'] == ['10.20.0.5-10.20.0.7']
    stats = kube.request_counts()
    assert stats['exec_count'] == 2
    # check mode went to the server as a dry run
    assert stats['dry_run_requests'] == {'create configmaps': 1}


def test_helm_release_lifecycle(kube, tmp_path):  # noqa: F811
    env = tool_env(kube, tmp_path)

    def helm(*args):
        proc = subprocess.run(['helm'] + list(args), capture_output=True, text=True, env=env, timeout=120,
                              check=False, cwd=str(tmp_path))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    helm('create', 'demo')
    helm('install', 'rel', './demo', '--namespace', 'demo', '--create-namespace', '--wait', '--timeout', '60s')
    secrets = kube.objects('Secret', 'demo')
    release = [s for s in secrets if s['type'] == 'helm.sh/release.v1']
    assert len(release) == 1 and release[0]['metadata']['labels']['owner'] == 'helm'
    assert release[0]['metadata']['labels']['status'] == 'deployed'
    assert kube.get('Deployment', 'rel-demo', 'demo')['status']['readyReplicas'] == 1
    helm('upgrade', 'rel', './demo', '--namespace', 'demo', '--set', 'replicaCount=2', '--wait', '--timeout', '60s')
    assert kube.get('Deployment', 'rel-demo', 'demo')['status']['readyReplicas'] == 2
    listed = json.loads(helm('list', '--namespace', 'demo', '-o', 'json'))
    assert [(r['name'], r['revision'], r['status']) for r in listed] == [('rel', '2', 'deployed')]
    assert json.loads(helm('status', 'rel', '--namespace', 'demo', '-o', 'json'))['info']['status'] == 'deployed'
    helm('uninstall', 'rel', '--namespace', 'demo', '--wait')
    assert kube.objects('Deployment', 'demo') == [] and kube.objects('Pod', 'demo') == []
    assert [s for s in kube.objects('Secret', 'demo') if s['type'] == 'helm.sh/release.v1'] == []
    # kubernetes.core.helm on the same chart: install with wait, re-run unchanged, values change -> upgrade
    helm_task = {'release_name': 'mod', 'chart_ref': str(tmp_path / 'demo'), 'release_namespace': 'demo',
                 'wait': True, 'wait_timeout': '60s', 'binary_path': os.path.join(ROOT, '.cache', 'bin', 'helm')}
    run_playbook(kube, tmp_path, [
        {'name': 'Install', 'kubernetes.core.helm': helm_task, 'register': 'one'},
        {'name': 'Again', 'kubernetes.core.helm': helm_task, 'register': 'two'},
        {'name': 'Upgrade', 'kubernetes.core.helm': {**helm_task, 'release_values': {'replicaCount': 3}},
         'register': 'three'},
        {'name': 'Check', 'ansible.builtin.assert': {'that': [
            'one is changed', 'two is not changed', 'three is changed', "three.status.status == 'deployed'"]}}])
    assert kube.get('Deployment', 'mod-demo', 'demo')['status']['readyReplicas'] == 3


def test_kubectl_get_and_apply_kustomize(kube, tmp_path, spiderpool_crds):  # noqa: F811
    import yaml  # pylint: disable=import-outside-toplevel
    kube.load_crds(spiderpool_crds)
    env = tool_env(kube, tmp_path)
    render = tmp_path / 'render'
    render.mkdir()
    (render / 'pools.yaml').write_text(yaml.safe_dump_all([pool('a', ips=['10.20.0.1']),
                                                           pool('b', subnet='10.30.0.0/24', ips=['10.30.0.1'])]))
    (render / 'cm.yaml').write_text(yaml.safe_dump({**configmap('rendered'), 'metadata': {
        'name': 'rendered', 'namespace': 'default'}}))
    (render / 'kustomization.yaml').write_text(yaml.safe_dump({'apiVersion': 'kustomize.config.k8s.io/v1beta1',
                                                               'kind': 'Kustomization',
                                                               'resources': ['pools.yaml', 'cm.yaml']}))

    def kubectl(*args):
        proc = subprocess.run(['kubectl'] + list(args), capture_output=True, text=True, env=env, timeout=60,
                              check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    out = kubectl('apply', '-k', str(render), '--validate=false')
    assert 'spiderippool.spiderpool.spidernet.io/a created' in out and 'configmap/rendered created' in out
    out = kubectl('apply', '-k', str(render), '--validate=false')
    assert out.count('unchanged') == 3
    assert sorted(p['metadata']['name'] for p in kube.objects('SpiderIPPool')) == ['a', 'b']
    names = kubectl('get', 'spiderippools', '-o', 'jsonpath={.items[*].metadata.name}')
    assert names.split() == ['a', 'b']
    assert 'rendered' in kubectl('get', 'configmaps', '-n', 'default')
    assert json.loads(kubectl('get', 'sp', 'a', '-o', 'json'))['spec']['subnet'] == '10.20.0.0/24'
    # server-side Table: the CRD's printer columns
    header, row = kubectl('get', 'sp', 'b').splitlines()
    assert header.split()[:3] == ['NAME', 'VERSION', 'SUBNET'] and row.split()[:3] == ['b', '<none>', '10.30.0.0/24']
    # kubectl exec speaks the WebSocket protocol
    kube.set_exec_table([{'pod': 'box', 'command': '^id -u$', 'stdout': '0\n'}])
    kubectl('run', 'box', '--image=busybox')
    # kubectl wait uses the watch-list protocol (initial events, then an initial-events-end bookmark)
    assert 'condition met' in kubectl('wait', '--for=condition=Ready', 'pod/box', '--timeout=10s')
    assert kubectl('exec', 'box', '--', 'id', '-u') == '0\n'
    proc = subprocess.run(['kubectl', 'exec', 'box', '--', 'ls'], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert proc.returncode == 127 and 'no exec table rule matches' in proc.stderr


# ---------------------------------------------------------------------------------------------
# Spiderpool webhook and IPAM emulation

def test_spiderpool_webhooks(kube_factory, spiderpool_crds):  # noqa: F811
    double = kube_factory(crds=spiderpool_crds, spiderpool_webhooks=True)
    dc = dyn(double)
    pools = dc.resources.get(api_version=POOL_API, kind='SpiderIPPool')
    made = pools.create(body=pool('p1', ips=['10.20.0.9', '10.20.0.5', '10.20.0.6', '10.20.0.7', '10.20.0.20'],
                                  gateway='10.20.0.253')).to_dict()
    assert made['spec']['ips'] == ['10.20.0.5-10.20.0.7', '10.20.0.9', '10.20.0.20']
    assert made['spec']['ipVersion'] == 4 and 'spiderpool.spidernet.io' in made['metadata']['finalizers']
    assert made['metadata']['labels']['ipam.spidernet.io/ippool-cidr'] == '10-20-0-0-24'
    code, status = api_error(lambda: pools.create(body=pool('p2', ips=['10.20.0.7-10.20.0.8'])))
    assert code == 422 and 'overlap with IPPool p1' in status['message']
    code, status = api_error(lambda: pools.create(body=pool('p3', ips=['10.21.0.1'])))
    assert 'does not pertain to subnet' in status['message']
    code, status = api_error(lambda: pools.create(body=pool('p4', subnet='10.20.0.7/24')))
    assert 'unformatted subnet' in status['message']
    assert pools.create(body=pool('p5', ips=['10.20.0.30'])).spec.ips == ['10.20.0.30']
    # an update that drops an allocated IP is refused with Spiderpool's message
    current = pools.get(name='p1').to_dict()
    current['status'] = {'allocatedIPs': json.dumps({'10.20.0.6': {'pod': 'apps/web-1', 'podUid': 'u1'}}),
                         'allocatedIPCount': 1}
    pools.status.replace(body=current)
    code, status = api_error(lambda: pools.patch(name='p1', body={'spec': {'ips': ['10.20.0.5', '10.20.0.7']}},
                                                 content_type='application/merge-patch+json'))
    assert code == 422
    assert ("spec.ips: Forbidden: remove an IP address 10.20.0.6 that is being used by Pod apps/web-1, total IP "
            "addresses of an IPPool are jointly determined by 'spec.ips' and 'spec.excludeIPs'") in status['message']
    code, status = api_error(lambda: pools.patch(name='p1', body={'spec': {'excludeIPs': ['10.20.0.6']}},
                                                 content_type='application/merge-patch+json'))
    assert 'remove an IP address 10.20.0.6' in status['message']
    code, status = api_error(lambda: pools.patch(name='p1', body={'spec': {'subnet': '10.20.0.0/16'}},
                                                 content_type='application/merge-patch+json'))
    assert code == 422
    # the finalizer keeps an allocated pool; once released it goes away
    pools.delete(name='p5')
    assert double.get('SpiderIPPool', 'p5') is None
    pools.delete(name='p1')
    assert double.get('SpiderIPPool', 'p1')['metadata']['deletionTimestamp']
    current = pools.get(name='p1').to_dict()
    current['status'] = {'allocatedIPCount': 0}
    pools.status.replace(body=current)
    assert double.get('SpiderIPPool', 'p1') is None
    # SpiderMultusConfig: #2700 (ipvlan plus leftover custom config) refused; NAD rendered and collected
    smcs = dc.resources.get(api_version=POOL_API, kind='SpiderMultusConfig')
    smc = {'apiVersion': POOL_API, 'kind': 'SpiderMultusConfig',
           'metadata': {'name': 'ipvlan-eth0', 'namespace': 'kube-system'},
           'spec': {'cniType': 'ipvlan', 'enableCoordinator': True, 'ipvlan': {'master': ['eth0']},
                    'customCNI': '{"type": "custom"}'}}
    code, status = api_error(lambda: smcs.create(namespace='kube-system', body=smc))
    assert code == 422 and 'the cniType ipvlan only supports ipvlan' in status['message']
    del smc['spec']['customCNI']
    smc['spec']['ipvlan']['ippools'] = {'ipv4': ['p1']}
    smcs.create(namespace='kube-system', body=smc)
    nad = double.get('NetworkAttachmentDefinition', 'ipvlan-eth0', 'kube-system')
    config = json.loads(nad['spec']['config'])
    assert [p['type'] for p in config['plugins']] == ['ipvlan', 'coordinator']
    assert config['plugins'][0]['master'] == 'eth0'
    assert config['plugins'][0]['ipam'] == {'type': 'spiderpool', 'default_ipv4_ippool': ['p1'],
                                            'default_ipv6_ippool': []}
    smcs.delete(name='ipvlan-eth0', namespace='kube-system')
    assert double.objects('NetworkAttachmentDefinition') == []
    # SpiderCoordinator: NotReady without kubeadm-config or a kube-controller-manager pod (#3054), then Synced
    sccs = dc.resources.get(api_version=POOL_API, kind='SpiderCoordinator')
    sccs.create(body={'apiVersion': POOL_API, 'kind': 'SpiderCoordinator', 'metadata': {'name': 'default'},
                      'spec': {'mode': 'auto', 'podCIDRType': 'auto'}})
    status = double.get('SpiderCoordinator', 'default')['status']
    assert status['phase'] == 'NotReady' and 'kubeadm-config' in status['reason']
    double.apply({**configmap('kubeadm-config', data={'ClusterConfiguration': 'networking:\n  podSubnet: '
                                                      '10.244.0.0/16\n  serviceSubnet: 10.96.0.0/12\n'}),
                  'metadata': {'name': 'kubeadm-config', 'namespace': 'kube-system'}})
    assert double.get('SpiderCoordinator', 'default')['status'] == {
        'phase': 'Synced', 'overlayPodCIDR': ['10.244.0.0/16'], 'serviceCIDR': ['10.96.0.0/12']}


def test_pod_ips_from_spiderippools(kube_factory, spiderpool_crds):  # noqa: F811
    double = kube_factory(crds=spiderpool_crds, spiderpool_webhooks=True, spiderpool_ipam=True,
                          simulate_kubelet=True, nodes=['n1', 'n2'])
    for node, first in (('n1', 10), ('n2', 20)):
        double.apply(pool('%s-eth0' % node, ips=['10.20.0.%d-10.20.0.%d' % (first, first + 1)], nodeName=[node],
                          multusName=['kube-system/ipvlan-eth0']))
    dc = dyn(double)
    ds = {'apiVersion': 'apps/v1', 'kind': 'DaemonSet', 'metadata': {'name': 'probe', 'namespace': 'default'},
          'spec': {'selector': {'matchLabels': {'app': 'probe'}}, 'template': {
              'metadata': {'labels': {'app': 'probe'},
                           'annotations': {'v1.multus-cni.io/default-network': 'kube-system/ipvlan-eth0'}},
              'spec': {'containers': [{'name': 'c', 'image': 'busybox'}]}}}}
    dc.resources.get(api_version='apps/v1', kind='DaemonSet').create(namespace='default', body=ds)
    pods = {p['spec']['nodeName']: p for p in double.objects('Pod', 'default')}
    assert pods['n1']['status']['podIP'] == '10.20.0.10' and pods['n2']['status']['podIP'] == '10.20.0.20'
    status = double.get('SpiderIPPool', 'n1-eth0')['status']
    held = json.loads(status['allocatedIPs'])
    assert held == {'10.20.0.10': {'pod': 'default/%s' % pods['n1']['metadata']['name'],
                                   'podUid': pods['n1']['metadata']['uid']}}
    assert status['allocatedIPCount'] == 1
    plain = dc.resources.get(api_version='v1', kind='Pod').create(namespace='default', body={
        'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'plain'},
        'spec': {'nodeName': 'n1', 'containers': [{'name': 'c', 'image': 'busybox'}]}})
    assert double.get('Pod', 'plain', 'default')['status']['podIP'].startswith('10.244.')
    del plain
    # a pod whose network has no pool with a free IP stays Pending, with the kubelet's warning event
    dc.resources.get(api_version='v1', kind='Pod').create(namespace='default', body={
        'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'orphan', 'annotations': {
            'v1.multus-cni.io/default-network': 'kube-system/ipvlan-eth9'}},
        'spec': {'nodeName': 'n1', 'containers': [{'name': 'c', 'image': 'busybox'}]}})
    assert double.get('Pod', 'orphan', 'default')['status']['phase'] == 'Pending'
    warnings = [e for e in double.objects('Event', 'default') if e['involvedObject']['name'] == 'orphan']
    assert [e['reason'] for e in warnings] == ['FailedCreatePodSandBox']
    dc.resources.get(api_version='apps/v1', kind='DaemonSet').delete(name='probe', namespace='default')
    assert double.get('SpiderIPPool', 'n1-eth0')['status']['allocatedIPCount'] == 0
