"""The verify_* filters: registration, plumbing to module_utils and error reporting."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.underlay.alicloud.plugins.filter.verify import FilterModule

FILTERS = FilterModule().filters()


def test_filters_registered():
    assert sorted(FILTERS) == ['verify_lb_results', 'verify_lb_targets', 'verify_nics', 'verify_plan']


def test_nics_and_plan_through_filters():
    pools = [{'metadata': {'name': 'n1-eth0-v4'},
              'spec': {'subnet': '10.0.0.0/24', 'ips': ['10.0.0.10-10.0.0.20'], 'nodeName': ['n1'], 'multusName': ['kube-system/ipvlan-eth0']}}]
    pods = [{'metadata': {'name': 'p%d' % i, 'namespace': 'uv', 'labels': {'underlay.alicloud/nic': 'eth0'},
                          'annotations': {'v1.multus-cni.io/default-network': 'kube-system/ipvlan-eth0'}},
             'spec': {'nodeName': 'n1'}, 'status': {'phase': 'Running', 'podIP': '10.0.0.1%d' % i}} for i in range(2)]
    nodes = [{'metadata': {'name': 'n1'}, 'status': {'addresses': [{'type': 'InternalIP', 'address': '10.0.0.2'}]}}]
    assert FILTERS['verify_nics'](pools) == ['eth0']
    assert FILTERS['verify_nics'](None) == []
    plan = FILTERS['verify_plan'](pods, nodes, None, {'count': 1})
    assert [[p['id'] for p in s['probes']] for s in plan['sources']] == [['node:10.0.0.2', 'pod:10.0.0.11'], ['node:10.0.0.2', 'pod:10.0.0.10']]


def test_loadbalancer_targets_and_results():
    services = [{'metadata': {'name': 'l4'}, 'spec': {'ports': [{'port': 999}]}, 'status': {'loadBalancer': {'ingress': [{'ip': '127.0.0.1'}]}}},
                {'metadata': {'name': 'l7'}, 'spec': {'ports': [{'port': 80}]}, 'status': {}},
                {'metadata': {'name': 'v6'}, 'spec': {'ports': [{'port': 80}]}, 'status': {'loadBalancer': {'ingress': [{'ip': 'fd00::9'}]}}}]
    targets = FILTERS['verify_lb_targets'](services, ['l4', 'l7', 'v6', 'gone'])
    assert [(t['name'], t['url']) for t in targets] == [('l4', 'http://127.0.0.1:999/'), ('l7', ''), ('v6', 'http://[fd00::9]:80/'), ('gone', '')]
    assert targets[1]['reason'] == 'no external address assigned (is the CCM running?)' and targets[3]['reason'] == 'Service not found'
    probes = [{'item': targets[0], 'status': 200, 'attempts': 3},
              {'item': targets[2], 'status': -1, 'attempts': 30,
               'msg': 'Status code was -1 and not [200]: Request failed: <urlopen error [Errno 111] Connection refused>'}]
    results = FILTERS['verify_lb_results'](targets, probes)
    assert [(r['name'], r['status'], r['reason']) for r in results] == [
        ('l4', 'ok', 'HTTP 200 after 3 attempt(s)'),
        ('l7', 'fail', 'no external address assigned (is the CCM running?)'),
        ('v6', 'fail', 'connection refused after 30 attempt(s)'),
        ('gone', 'fail', 'Service not found')]
    assert results[0]['command'] == 'GET http://127.0.0.1:999/ (from the controller)'


def test_bad_input_is_a_filter_error_naming_the_value():
    with pytest.raises(AnsibleFilterError, match="verify_plan: unknown image flavor 'alpine'"):
        FILTERS['verify_plan']([], [], [], {'flavor': 'alpine'})
    with pytest.raises(AnsibleFilterError, match="verify_plan: invalid IP address 'nope'"):
        FILTERS['verify_plan']([{'metadata': {'name': 'p'}, 'spec': {}, 'status': {'podIP': 'nope'}}], [], [], {})
