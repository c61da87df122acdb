"""Unit tests for the whole-run checks (module_utils/preflight.py, module_utils/node_names.py)."""
import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils import node_names, preflight


def lab(**overrides):
    hosts = {'master': {'alicloud_hostname': 'master'}, 'worker': {'alicloud_hostname': 'worker'}}
    for host, facts in overrides.items():
        hosts.setdefault(host, {}).update(facts)
    return hosts


def test_a_good_run_has_no_problems():
    assert preflight.check_run(lab(), cluster_cidr='10.244.0.0/16') == []
    assert preflight.check_run(lab(), mode='render', render_dir='out', cluster_cidr='10.244.0.0/16,fd00:10:244::/56') == []


@pytest.mark.parametrize('run_tags, skip_tags, expected', [
    (['all'], [], list(preflight.STAGES)),
    (None, None, list(preflight.STAGES)),
    (['tagged'], ['verify'], ['enis', 'cni', 'spiderpool', 'networks', 'ccm', 'egress']),
    (['ccm', 'enis'], [], ['enis', 'ccm']),
    (['always'], [], []),
    (['all'], ['ccm', 'networks'], ['enis', 'cni', 'spiderpool', 'egress', 'verify']),
])
def test_selected_stages_follow_the_tags(run_tags, skip_tags, expected):
    assert preflight.selected_stages(run_tags, skip_tags) == expected


@pytest.mark.parametrize('mode, render_dir, message', [
    ('Render', 'out', "underlay_mode 'Render' is not a mode: expected apply or render"),
    ('render', '', 'underlay_mode is render but underlay_render_dir is empty'),
    ('render', '  ', 'underlay_mode is render but underlay_render_dir is empty'),
    (None, '', "underlay_mode None is not a mode"),
])
def test_mode_problems(mode, render_dir, message):
    errors = preflight.check_run(lab(), mode=mode, render_dir=render_dir, cluster_cidr='10.244.0.0/16')
    assert len(errors) == 1 and errors[0].startswith(message), errors


def test_empty_inventory_is_a_problem_naming_the_group():
    errors = preflight.check_run({}, group='my_nodes', stages=['enis'])
    assert errors == ['inventory group my_nodes has no hosts: nothing to set up. Check the inventory source (-i), its '
                      'filters and credentials (ansible-inventory -i SOURCE --graph lists what it finds)']


@pytest.mark.parametrize('value, message', [
    ('', "alicloud_ccm_cluster_cidr is not set: expected the cluster's pod CIDR"),
    (None, 'alicloud_ccm_cluster_cidr is not set'),
    (' , ', 'alicloud_ccm_cluster_cidr is not set'),
    ('10.244.0.1/16', 'alicloud_ccm_cluster_cidr: 10.244.0.1/16 is not a network in CIDR notation'),
    ('10.244.0.0', 'alicloud_ccm_cluster_cidr: 10.244.0.0 is not a network in CIDR notation'),
    ('10.244.0.0/16,banana', 'alicloud_ccm_cluster_cidr: banana is not a network in CIDR notation'),
    ('10.244.0.0/33', 'alicloud_ccm_cluster_cidr: 10.244.0.0/33 is not a network'),
    ('fd00::/56,fd01::/56', 'alicloud_ccm_cluster_cidr: fd00::/56 and fd01::/56 are both IPv6'),
])
def test_cluster_cidr_problems_name_the_value(value, message):
    errors = preflight.cluster_cidr_errors(value)
    assert len(errors) == 1 and errors[0].startswith(message), errors


def test_cluster_cidr_is_checked_only_when_the_ccm_stage_runs():
    assert preflight.check_run(lab(), stages=['enis', 'networks'], cluster_cidr='') == []
    assert preflight.check_run(lab(), stages=['ccm'], cluster_cidr='') == preflight.cluster_cidr_errors('')


def test_invalid_node_name_names_host_value_and_variable():
    errors = preflight.check_run(lab(w2={'alicloud_hostname': 'Worker_2.LAB'}), cluster_cidr='10.244.0.0/16')
    assert errors == [node_names.invalid_message('w2', 'alicloud_hostname', 'Worker_2.LAB')]
    assert "host w2: Kubernetes node name 'Worker_2.LAB' (from alicloud_hostname) is not a valid RFC 1123 subdomain" in errors[0]


def test_node_names_per_stage():
    # The CCM's override is only the CCM's: the pools still use the invalid HostName.
    hosts = lab(w2={'alicloud_hostname': 'bad_name', 'alicloud_ccm_node_name': 'w2'})
    assert preflight.node_name_errors(hosts, ['ccm']) == []
    assert preflight.node_name_errors(hosts, ['networks']) == [node_names.invalid_message('w2', 'alicloud_hostname', 'bad_name')]
    hosts = lab(w2={'spiderpool_networks_node_name': 'x' * 254})
    assert preflight.node_name_errors(hosts, ['networks'])[0].startswith("host w2: Kubernetes node name 'xxx")
    # Upper case and blanks are what the kubelet trims and lowers: valid.
    assert preflight.node_name_errors(lab(w2={'alicloud_hostname': ' iZbp1Z '}), ['networks', 'ccm']) == []
    # The enis/cni/spiderpool/verify stages name no Node.
    assert preflight.node_name_errors(lab(w2={'alicloud_hostname': 'a_b'}), ['enis', 'cni', 'spiderpool', 'verify']) == []


def test_missing_and_shared_node_names():
    hosts = lab(w2={})
    assert preflight.node_name_errors(hosts, ['networks', 'ccm']) == [
        'host w2 has no Kubernetes node name: neither spiderpool_networks_node_name nor alicloud_hostname is set']
    hosts = lab(w2={'alicloud_hostname': 'Worker'})
    assert preflight.node_name_errors(hosts, ['networks']) == [
        'hosts worker and w2 have the same Kubernetes node name worker (set spiderpool_networks_node_name for one of them)']


def test_every_problem_is_reported_at_once():
    errors = preflight.check_run(lab(w2={'alicloud_hostname': 'a_b'}), mode='render', cluster_cidr='x')
    assert [e.split(' ', maxsplit=1)[0] for e in errors] == ['underlay_mode', 'host', 'alicloud_ccm_cluster_cidr:']


def test_unknown_stage():
    assert preflight.check_run(lab(), stages=['ccm', 'pools']) == [
        'unknown stage(s) pools: expected some of enis, cni, spiderpool, networks, ccm, egress, verify']


def test_unfinished_eni_hosts():
    hosts = lab(master={'underlay_enis_stage': 'done'}, worker={'underlay_enis_stage': 'started'}, w3={})
    assert preflight.unfinished_eni_hosts(hosts) == ['worker']
