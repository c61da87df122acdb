"""The verify_* filters: registration, plumbing to module_utils and error reporting."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.underlay.alicloud.plugins.filter.verify import FilterModule

FILTERS = FilterModule().filters()


def test_filters_registered():
    assert sorted(FILTERS) == ['verify_html', 'verify_markdown', 'verify_nics', 'verify_plan', 'verify_report', 'verify_summary']


def test_round_trip_through_filters():
    pools = [{'metadata': {'name': 'n1-eth0-v4'},
              'spec': {'subnet': '10.0.0.0/24', 'ips': ['10.0.0.10-10.0.0.20'], 'nodeName': ['n1'], 'multusName': ['kube-system/ipvlan-eth0']}}]
    pods = [{'metadata': {'name': 'p%d' % i, 'namespace': 'uv', 'labels': {'underlay.alicloud/nic': 'eth0'},
                          'annotations': {'v1.multus-cni.io/default-network': 'kube-system/ipvlan-eth0'}},
             'spec': {'nodeName': 'n1'}, 'status': {'phase': 'Running', 'podIP': '10.0.0.1%d' % i}} for i in range(2)]
    nodes = [{'metadata': {'name': 'n1'}, 'status': {'addresses': [{'type': 'InternalIP', 'address': '10.0.0.2'}]}}]
    assert FILTERS['verify_nics'](pools) == ['eth0']
    plan = FILTERS['verify_plan'](pods, nodes, None, {'count': 1})
    results = [{'item': src, 'stdout': ''.join('::uv:: begin %s\n1 packets transmitted, 1 packets received\n::uv:: end %s rc=0\n'
                                               % (p['id'], p['id']) for p in src['probes'])} for src in plan['sources']]
    report = FILTERS['verify_report'](plan, results, pools)
    assert report['result'] == 'pass' and report['probes'] == 4
    assert FILTERS['verify_summary'](report)[0].endswith('PASS (2 exec calls, 4 probes)')
    assert FILTERS['verify_markdown'](report).startswith('# Underlay connectivity: PASS')
    assert FILTERS['verify_html'](report).startswith('<!DOCTYPE html>')


def test_bad_input_is_a_filter_error_naming_the_value():
    with pytest.raises(AnsibleFilterError, match="verify_plan: unknown image flavor 'alpine'"):
        FILTERS['verify_plan']([], [], [], {'flavor': 'alpine'})
    with pytest.raises(AnsibleFilterError, match="verify_report: unknown check.s. bogus"):
        FILTERS['verify_report']({'sources': [], 'columns': []}, [], [], None, {'required': ['bogus']})
