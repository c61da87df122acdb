# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.underlay.alicloud.plugins.filter.underlay import FilterModule
from ansible_collections.underlay.alicloud.tests.unit.plugins.module_utils.test_planner import dual_stack_hosts, guide_hosts

FILTERS = FilterModule().filters()


def test_filters_are_registered():
    assert sorted(FILTERS) == [
        'pod_problems', 'spiderpool_ip_ranges', 'spiderpool_plan', 'underlay_kustomization', 'underlay_render_root']


def test_plan_reads_only_planner_facts_from_hostvars():
    hosts = guide_hosts()
    for facts in hosts:
        facts['ansible_host'] = object()          # unrelated hostvars are never touched
    result = FILTERS['spiderpool_plan'](hosts)
    assert [p['metadata']['name'] for p in result['ippools']] == ['master-eth0-v4', 'master-eth1-v4', 'worker-eth0-v4', 'worker-eth1-v4']
    as_dict = FILTERS['spiderpool_plan']({h['inventory_hostname']: h for h in guide_hosts()}, {'interfaces': ['eth1']})
    assert [p['metadata']['name'] for p in as_dict['ippools']] == ['master-eth1-v4', 'worker-eth1-v4']


def test_plan_warnings_are_ansible_warnings(monkeypatch):
    from ansible_collections.underlay.alicloud.plugins.filter import underlay  # pylint: disable=import-outside-toplevel
    shown = []
    monkeypatch.setattr(underlay.display, 'warning', shown.append)
    assert FILTERS['spiderpool_plan'](guide_hosts())['warnings'] == [] and shown == []
    hosts = dual_stack_hosts('master', 'worker')
    hosts[1]['alicloud_enis'][1]['ipv6_ips'] = []
    result = FILTERS['spiderpool_plan'](hosts)
    assert shown == ['spiderpool_plan: %s' % line for line in result['warnings']] and len(shown) == 1
    assert shown[0].startswith('spiderpool_plan: interface eth1 has IPv6 pools on 1 of 2 nodes: on worker a pod')


def test_plan_errors_are_filter_errors():
    hosts = guide_hosts()
    del hosts[1]['alicloud_enis']
    with pytest.raises(AnsibleFilterError, match=r'^spiderpool_plan: node worker \(host worker\) has no ENI facts'):
        FILTERS['spiderpool_plan'](hosts)


def test_ip_ranges():
    assert FILTERS['spiderpool_ip_ranges'](['10.0.0.10', '10.0.0.9', '10.0.0.12']) == ['10.0.0.9-10.0.0.10', '10.0.0.12']
    with pytest.raises(AnsibleFilterError, match="spiderpool_ip_ranges: address 'x' is not an IP address"):
        FILTERS['spiderpool_ip_ranges'](['x'])


def test_kustomization_lists_resources_only():
    root = '/out/render'
    files = [
        {'path': '/out/render/spiderpool-networks/spiderippools.yaml'},
        {'path': '/out/render/spiderpool-networks/spidermultusconfigs.yaml'},
        {'path': '/out/render/alicloud-ccm/daemonset.yml'},
        {'path': '/out/render/kustomization.yaml'},
        {'path': '/out/render/values/spiderpool.yaml'},
        {'path': '/out/render/spiderpool/helm/values.yaml'},
        {'path': '/out/render/README.md'},
        'extra/objects.yaml',
    ]
    assert FILTERS['underlay_kustomization'](files, root + '/') == {
        'apiVersion': 'kustomize.config.k8s.io/v1beta1',
        'kind': 'Kustomization',
        'resources': ['alicloud-ccm/daemonset.yml', 'extra/objects.yaml', 'spiderpool-networks/spiderippools.yaml',
                      'spiderpool-networks/spidermultusconfigs.yaml'],
    }
    assert FILTERS['underlay_kustomization']([], root)['resources'] == []
    relative = [{'path': 'out/render/spiderpool-networks/spiderippools.yaml'}, {'path': 'out/render/kustomization.yaml'}]
    assert FILTERS['underlay_kustomization'](relative, 'out/render')['resources'] == ['spiderpool-networks/spiderippools.yaml']
    with pytest.raises(AnsibleFilterError, match='/elsewhere/a.yaml is not under /out/render'):
        FILTERS['underlay_kustomization'](['/elsewhere/a.yaml'], root)


def test_render_root_is_absolute_from_the_start_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('HOME', '/home/ops')
    assert FILTERS['underlay_render_root']('out/render/') == str(tmp_path / 'out' / 'render')
    assert FILTERS['underlay_render_root']('/srv/gitops/../render') == '/srv/render'
    assert FILTERS['underlay_render_root']('~/gitops') == '/home/ops/gitops'
    assert FILTERS['underlay_render_root']('') == ''
