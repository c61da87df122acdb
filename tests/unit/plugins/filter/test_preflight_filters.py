"""Unit tests for the preflight filters: hostvars handling and the filter names."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.underlay.alicloud.plugins.filter import preflight as filters


HOSTVARS = {'master': {'alicloud_hostname': 'master', 'underlay_enis_stage': 'done', 'other': 'ignored'},
            'worker': {'alicloud_hostname': 'Worker_1', 'underlay_enis_stage': 'started'}}


def test_filters_are_registered():
    assert sorted(filters.FilterModule().filters()) == [
        'underlay_cluster_cidr_errors', 'underlay_preflight', 'underlay_stages', 'underlay_unfinished_eni_hosts']


def test_preflight_reads_the_named_hosts_only():
    assert filters.underlay_preflight(['master'], HOSTVARS, cluster_cidr='10.0.0.0/8') == []
    errors = filters.underlay_preflight(['master', 'worker'], HOSTVARS, stages=['networks'])
    assert errors == ["host worker: Kubernetes node name 'Worker_1' (from alicloud_hostname) is not a valid RFC 1123 subdomain: "
                      "expected at most 253 lower-case letters, digits, '-' and '.', starting and ending with a letter or digit; "
                      'fix the ECS HostName or set spiderpool_networks_node_name and alicloud_ccm_node_name for the host']


def test_unfinished_eni_hosts_and_stages():
    assert filters.underlay_unfinished_eni_hosts(['master', 'worker'], HOSTVARS) == ['worker']
    assert filters.underlay_stages(['networks'], []) == ['networks']
    assert filters.underlay_cluster_cidr_errors('10.0.0.0/8') == []


@pytest.mark.parametrize('hosts, hostvars, message', [
    (['nobody'], HOSTVARS, 'underlay_preflight: host nobody has no host variables'),
    (['master'], ['not', 'a', 'mapping'], 'underlay_preflight: hostvars must be a mapping, got list'),
])
def test_bad_filter_input(hosts, hostvars, message):
    with pytest.raises(AnsibleFilterError, match=message):
        filters.underlay_preflight(hosts, hostvars)
