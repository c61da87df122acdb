"""Unit tests of the underlay.alicloud.ecs inventory plugin: everything that needs no cloud.

gather_hosts (the only I/O) is replaced by a recorder that returns fixed host facts; the plugin
itself is loaded through ansible-core's plugin loader so options, doc fragments and the
constructed/cache machinery are the real ones.
"""

import gc
import json
import os
import sys

import pytest
import yaml

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, inventory_loader
from ansible.utils.collection_loader import AnsibleCollectionConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
SECRET = 'unit-test-secret-value-9f3b'


def eni(eni_id, kind, index, primary_ip, secondary=(), cidr='172.31.192.0/20', gateway='172.31.207.253'):
    return {'id': eni_id, 'type': kind, 'mac': '00:16:3e:00:00:%02x' % (index + 1), 'device_index': index,
            'vswitch_id': 'vsw-bp1a', 'cidr': cidr, 'gateway': gateway, 'primary_ip': primary_ip,
            'secondary_ips': list(secondary), 'ipv6_cidr': None, 'ipv6_ips': []}


def host(instance_id, hostname, tags, ip, region='cn-hangzhou', zone='cn-hangzhou-i', name=None):
    return {
        'alicloud_instance_id': instance_id,
        'alicloud_region': region,
        'alicloud_zone': zone,
        'alicloud_instance_type': 'ecs.g7.large',
        'alicloud_provider_id': '%s.%s' % (region, instance_id),
        'alicloud_vpc_id': 'vpc-bp1lab',
        'alicloud_hostname': hostname,
        'alicloud_tags': dict(tags),
        'alicloud_eni_quota': {'enis': 3, 'ipv4_per_eni': 6, 'ipv6_per_eni': 6},
        'alicloud_enis': [eni('eni-%s0' % instance_id[2:], 'Primary', 0, ip, ['172.31.199.10']),
                          eni('eni-%s1' % instance_id[2:], 'Secondary', 1, '172.31.200.1')],
        'alicloud_instance_name': name,
        'alicloud_status': 'Running',
        'alicloud_vswitch_id': 'vsw-bp1a',
        'alicloud_private_ip': ip,
    }


HOSTS = [
    host('i-bp1worker1', 'worker1', {'cluster': 'lab', 'role': 'worker', 'Name': 'w1'}, '172.31.199.20', name='lab-worker-1'),
    host('i-bp1master', 'master', {'cluster': 'lab', 'role': 'master', 'Name': 'm'}, '172.31.199.183', name='lab-master'),
    host('i-sh1other', None, {'cluster': 'other'}, '10.1.0.5', region='cn-shanghai', zone='cn-shanghai-b'),
]


@pytest.fixture(scope='module', autouse=True)
def collection_loader():
    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader([os.path.join(ROOT, '.collections')])


class Recorder:
    """Stands in for gather_hosts: records each call, returns deep copies of the given hosts."""

    def __init__(self, hosts):
        self.hosts = hosts
        self.calls = []
        self.error = None

    def __call__(self, clients, regions=None, filters_list=None, exclude_filters_list=None, on_region_error=None, **kwargs):
        self.calls.append({'settings': dict(clients.settings), 'regions': regions, 'filters_list': filters_list,
                           'exclude_filters_list': exclude_filters_list, 'on_region_error': on_region_error})
        if self.error is not None:
            raise self.error
        return json.loads(json.dumps(self.hosts))


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder(HOSTS)
    module = sys.modules[type(inventory_loader.get('underlay.alicloud.ecs')).__module__]
    monkeypatch.setattr(module, 'gather_hosts', rec)
    return rec


@pytest.fixture
def run(tmp_path, recorder, monkeypatch):
    """run(config_dict, cache=True) -> (InventoryData, plugin); writes the config next to a cache dir."""
    for name in ('ALIBABA_CLOUD_ECS_ENDPOINT', 'ALIBABA_CLOUD_VPC_ENDPOINT', 'ANSIBLE_CACHE_PLUGIN',
                 'ANSIBLE_INVENTORY_CACHE', 'ANSIBLE_INVENTORY_CACHE_PLUGIN'):
        monkeypatch.delenv(name, raising=False)

    def _run(config, cache=True, filename='unit.alicloud_ecs.yml'):
        path = tmp_path / filename
        path.write_text(yaml.safe_dump(dict({'plugin': 'underlay.alicloud.ecs', 'regions': ['cn-hangzhou']}, **config)))
        plugin = inventory_loader.get('underlay.alicloud.ecs')
        inventory = InventoryData()
        plugin.parse(inventory, DataLoader(), str(path), cache=cache)
        if getattr(plugin, '_cache', None) is not None:
            plugin.update_cache_if_changed()
        return inventory, plugin
    return _run


def hostvars(inventory, name):
    return {k: v for k, v in inventory.get_host(name).vars.items() if k not in ('inventory_dir', 'inventory_file')}


def group_hosts(inventory, group):
    return sorted(h.name for h in inventory.groups[group].get_hosts())


# --- verify_file --------------------------------------------------------------------------------------------

@pytest.mark.parametrize('filename, valid', [
    ('lab.alicloud_ecs.yml', True), ('alicloud_ecs.yaml', True), ('prod.alicloud_ecs.yaml', True),
    ('lab.yml', False), ('lab.alicloud.yml', False), ('lab.alicloud_ecs.json', False),
])
def test_verify_file_by_suffix(tmp_path, filename, valid):
    path = tmp_path / filename
    path.write_text('plugin: underlay.alicloud.ecs\n')
    assert inventory_loader.get('underlay.alicloud.ecs').verify_file(str(path)) is valid


def test_verify_file_rejects_missing_file(tmp_path):
    assert not inventory_loader.get('underlay.alicloud.ecs').verify_file(str(tmp_path / 'gone.alicloud_ecs.yml'))


def test_wrong_plugin_name_is_rejected(tmp_path, recorder):
    path = tmp_path / 'x.alicloud_ecs.yml'
    path.write_text('plugin: amazon.aws.aws_ec2\n')
    with pytest.raises(AnsibleParserError, match='Incorrect plugin name'):
        inventory_loader.get('underlay.alicloud.ecs').parse(InventoryData(), DataLoader(), str(path))
    assert recorder.calls == []


# --- host variables and default groups ----------------------------------------------------------------------

def test_host_variables_are_the_facts_plus_ansible_host(run):
    inventory, _plugin = run({})
    assert sorted(inventory.hosts) == ['i-sh1other', 'master', 'worker1']
    for facts in HOSTS:
        name = facts['alicloud_hostname'] or facts['alicloud_instance_id']
        expected = dict(facts, ansible_host=facts['alicloud_enis'][0]['primary_ip'])
        assert hostvars(inventory, name) == expected


def test_default_groups_by_region_and_zone(run):
    inventory, _plugin = run({})
    assert group_hosts(inventory, 'alicloud_region_cn_hangzhou') == ['master', 'worker1']
    assert group_hosts(inventory, 'alicloud_zone_cn_hangzhou_i') == ['master', 'worker1']
    assert group_hosts(inventory, 'alicloud_region_cn_shanghai') == ['i-sh1other']
    assert group_hosts(inventory, 'alicloud_zone_cn_shanghai_b') == ['i-sh1other']


def test_hosts_are_added_in_region_then_instance_id_order(run):
    inventory, _plugin = run({'hostnames': ['instance_id']})
    assert list(inventory.hosts) == ['i-bp1master', 'i-bp1worker1', 'i-sh1other']


def test_prefix_and_suffix_rename_facts_but_not_ansible_host(run):
    inventory, _plugin = run({'hostvars_prefix': 'ecs_', 'hostvars_suffix': '_v'})
    variables = hostvars(inventory, 'master')
    assert variables['ecs_alicloud_instance_id_v'] == 'i-bp1master'
    assert variables['ecs_alicloud_enis_v'][0]['id'] == 'eni-bp1master0'
    assert variables['ansible_host'] == '172.31.199.183'
    assert not [k for k in variables if k.startswith('alicloud_')]


def test_compose_runs_after_defaults_and_can_override_ansible_host(run):
    inventory, _plugin = run({'compose': {'ansible_host': 'alicloud_enis[1].primary_ip', 'node_name': 'alicloud_hostname'}})
    assert hostvars(inventory, 'master')['ansible_host'] == '172.31.200.1'
    assert hostvars(inventory, 'master')['node_name'] == 'master'


def test_compose_sees_prefixed_names(run):
    inventory, _plugin = run({'hostvars_prefix': 'x_', 'compose': {'zone': 'x_alicloud_zone'}})
    assert hostvars(inventory, 'master')['zone'] == 'cn-hangzhou-i'


# --- constructed groups, strictness --------------------------------------------------------------------------

KUBESPRAY_GROUPS = {
    'kube_control_plane': "alicloud_tags.role | default('') == 'master'",
    'kube_node': "alicloud_tags.role | default('') == 'worker'",
    'k8s_cluster': "alicloud_tags.role | default('') in ['master', 'worker']",
}


def test_groups_from_tags(run):
    inventory, _plugin = run({'groups': KUBESPRAY_GROUPS})
    assert group_hosts(inventory, 'kube_control_plane') == ['master']
    assert group_hosts(inventory, 'kube_node') == ['worker1']
    assert group_hosts(inventory, 'k8s_cluster') == ['master', 'worker1']


def test_keyed_groups_and_leading_separator(run):
    inventory, _plugin = run({'keyed_groups': [{'key': 'alicloud_tags.cluster', 'prefix': 'cluster'},
                                               {'key': 'alicloud_instance_type'}],
                              'leading_separator': False})
    assert group_hosts(inventory, 'cluster_lab') == ['master', 'worker1']
    assert group_hosts(inventory, 'cluster_other') == ['i-sh1other']
    assert group_hosts(inventory, 'ecs_g7_large') == ['i-sh1other', 'master', 'worker1']


def test_keyed_groups_from_tag_mapping(run):
    inventory, _plugin = run({'keyed_groups': [{'key': 'alicloud_tags', 'prefix': 'tag'}]})
    assert group_hosts(inventory, 'tag_role_master') == ['master']
    assert group_hosts(inventory, 'tag_cluster_other') == ['i-sh1other']


def test_non_strict_skips_broken_expressions(run):
    inventory, _plugin = run({'strict': False, 'groups': {'broken': 'alicloud_tags.nope.deeper == 1'},
                              'compose': {'x': 'undefined_thing.attr'}})
    assert 'broken' not in inventory.groups
    assert 'x' not in hostvars(inventory, 'master')


def test_strict_fails_on_broken_expressions(run):
    with pytest.raises(AnsibleError, match='broken'):
        run({'strict': True, 'groups': {'broken': 'alicloud_tags.nope.deeper == 1'}})


# --- hostnames ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('hostnames, expected', [
    (['hostname', 'instance_id'], ['i-sh1other', 'master', 'worker1']),
    (['tag:Name', 'instance_id'], ['i-sh1other', 'm', 'w1']),
    (['instance_name', 'private_ip'], ['10.1.0.5', 'lab-master', 'lab-worker-1']),
    (['private_ip'], ['10.1.0.5', '172.31.199.183', '172.31.199.20']),
    (["{{ alicloud_tags.cluster }}-{{ alicloud_instance_id[-4:] }}"], ['lab-ker1', 'lab-ster', 'other-ther']),
    ([{'name': 'hostname', 'prefix': 'tag:cluster', 'separator': '-'}, 'instance_id'], ['i-sh1other', 'lab-master', 'lab-worker1']),
    ([{'name': 'instance_id', 'prefix': 'tag:cluster'}], ['lab_i-bp1master', 'lab_i-bp1worker1', 'other_i-sh1other']),
])
def test_hostnames_preference(run, hostnames, expected):
    inventory, _plugin = run({'hostnames': hostnames})
    assert sorted(inventory.hosts) == expected


def test_hosts_without_any_hostname_are_left_out(run):
    inventory, _plugin = run({'hostnames': ['tag:Name']})
    assert sorted(inventory.hosts) == ['m', 'w1']


def test_jinja_hostname_with_undefined_value_falls_through(run):
    inventory, _plugin = run({'hostnames': ['{{ alicloud_tags.Name }}', 'instance_id']})
    assert sorted(inventory.hosts) == ['i-sh1other', 'm', 'w1']


def test_duplicate_hostname_falls_back_to_instance_id(run, recorder):
    recorder.hosts = [dict(HOSTS[0]), dict(HOSTS[1], alicloud_hostname='worker1')]
    inventory, _plugin = run({'hostnames': ['hostname']})
    # i-bp1master sorts first, so it keeps the name; the other one is named by its id.
    assert hostvars(inventory, 'worker1')['alicloud_instance_id'] == 'i-bp1master'
    assert hostvars(inventory, 'i-bp1worker1')['alicloud_instance_id'] == 'i-bp1worker1'


@pytest.mark.parametrize('entry', ['dns_name', 'tag:', 42, {'prefix': 'tag:x'}, {'name': 'hostname', 'sep': '-'},
                                   {'name': 'bogus'}])
def test_invalid_hostnames_entry_fails_before_any_call(run, recorder, entry):
    with pytest.raises(AnsibleParserError, match='hostnames entry'):
        run({'hostnames': [entry]})
    assert recorder.calls == []


# --- typos: unknown options and filter keys fail instead of selecting every instance --------------------------------

@pytest.mark.parametrize('config, message', [
    ({'filter': {'Status': 'Running'}}, "unknown option 'filter' (did you mean 'filters'?)"),
    ({'hostname': ['instance_id']}, "unknown option 'hostname' (did you mean 'hostnames'?)"),
    ({'exclude_filter': [{'Status': 'Stopped'}]}, "unknown option 'exclude_filter' (did you mean 'exclude_filters'?)"),
    ({'strict_permission': False}, "unknown option 'strict_permission' (did you mean 'strict_permissions'?)"),
    ({'keyed_groups': [{'key': 'alicloud_zone'}, {'key': 'alicloud_tags.env', 'prefixx': 'env'}]},
     "keyed_groups[1]: unknown key 'prefixx' (did you mean 'prefix'?)"),
])
def test_unknown_option_fails_before_any_call(run, recorder, config, message):
    with pytest.raises(AnsibleParserError) as err:
        run(config)
    assert str(err.value) == 'underlay.alicloud.ecs inventory: ' + message
    assert recorder.calls == []


@pytest.mark.parametrize('config, message', [
    ({'strict_permissions': 'sometimes'}, "option strict_permissions must be true or false, got 'sometimes'"),
    ({'strict': 2}, 'option strict must be true or false, got 2'),
    ({'cache': ['yes']}, "option cache must be true or false, got ['yes']"),
])
def test_a_bool_option_that_is_no_bool_fails_before_any_call(run, recorder, config, message):
    with pytest.raises(AnsibleParserError) as err:
        run(config)
    assert str(err.value) == 'underlay.alicloud.ecs inventory: ' + message
    assert recorder.calls == []
    run({'strict_permissions': 'no', 'strict': 'True', 'cache': 0})      # what ansible-core reads as a bool


@pytest.mark.parametrize('config, message', [
    ({'filters': {'Statuss': 'Running'}}, "filters: unknown DescribeInstances parameter 'Statuss' (did you mean 'Status'?)"),
    ({'filters': {'Tags': [{'Key': 'cluster', 'Value': 'lab'}]}},
     "filters: unknown DescribeInstances parameter 'Tags' (did you mean 'Tag'?)"),
    ({'include_filters': [{'VpcId': 'vpc-1'}, {'vpc_id': 'vpc-2'}]},
     "include_filters[1]: unknown DescribeInstances parameter 'vpc_id' (did you mean 'VpcId'?)"),
    ({'exclude_filters': [{'Tag': [{'key': 'lifecycle', 'Value': 'retiring'}]}]},
     "exclude_filters[0]: Tag[0]: unknown key 'key' (did you mean 'Key'?)"),
    ({'filters': {'RegionId': 'cn-beijing'}}, 'filters: RegionId is set by the collection itself (from the region option); remove it'),
])
def test_misspelt_filter_key_fails_before_any_call(run, recorder, config, message):
    with pytest.raises(AnsibleParserError) as err:
        run(config)
    assert str(err.value) == 'underlay.alicloud.ecs inventory: ' + message
    assert recorder.calls == []


def test_filters_in_the_tag_mapping_form_are_valid(run, recorder):
    run({'filters': {'Status': 'Running', 'Tag': {'cluster': 'lab'}}})
    assert recorder.calls[0]['filters_list'] == [{'Status': 'Running', 'Tag': {'cluster': 'lab'}}]


# --- filters, regions, credentials -------------------------------------------------------------------------------

def test_filters_then_include_filters_are_queries_and_exclude_filters_pass_through(run, recorder):
    run({'filters': {'Status': 'Running'},
         'include_filters': [{'VpcId': 'vpc-1'}, {'Tag': [{'Key': 'team', 'Value': 'net'}]}],
         'exclude_filters': [{'InstanceName': 'old-*'}]})
    call = recorder.calls[0]
    assert call['filters_list'] == [{'Status': 'Running'}, {'VpcId': 'vpc-1'}, {'Tag': [{'Key': 'team', 'Value': 'net'}]}]
    assert call['exclude_filters_list'] == [{'InstanceName': 'old-*'}]


def test_no_filters_is_one_unfiltered_query(run, recorder):
    run({})
    assert recorder.calls[0]['filters_list'] == [{}]
    assert recorder.calls[0]['exclude_filters_list'] == []


def test_include_filters_alone(run, recorder):
    run({'include_filters': [{'ZoneId': 'cn-hangzhou-i'}]})
    assert recorder.calls[0]['filters_list'] == [{'ZoneId': 'cn-hangzhou-i'}]


def test_empty_regions_means_all_regions(run, recorder):
    run({'regions': []})
    assert recorder.calls[0]['regions'] == []


def test_options_are_templated(run, recorder, monkeypatch):
    monkeypatch.setenv('UNIT_REGION', 'cn-beijing')
    monkeypatch.setenv('UNIT_KEY_ID', 'LTAIunit')
    monkeypatch.setenv('UNIT_SECRET', SECRET)
    run({'regions': ["{{ lookup('ansible.builtin.env', 'UNIT_REGION') }}", 'cn-shanghai'],
         'filters': {'VpcId': "{{ 'vpc-' ~ 'templated' }}"},
         'access_key_id': "{{ lookup('ansible.builtin.env', 'UNIT_KEY_ID') }}",
         'access_key_secret': "{{ lookup('ansible.builtin.env', 'UNIT_SECRET') }}",
         'ecs_endpoint': 'http://127.0.0.1:9'})
    call = recorder.calls[0]
    assert call['regions'] == ['cn-beijing', 'cn-shanghai']
    assert call['filters_list'] == [{'VpcId': 'vpc-templated'}]
    assert call['settings']['access_key_id'] == 'LTAIunit'
    assert call['settings']['access_key_secret'] == SECRET
    assert call['settings']['ecs_endpoint'] == 'http://127.0.0.1:9'


def test_strict_permissions_decides_whether_regions_may_be_skipped(run, recorder):
    run({})
    assert recorder.calls[0]['on_region_error'] is None
    run({'strict_permissions': False})
    assert callable(recorder.calls[1]['on_region_error'])


def test_api_error_is_one_line_without_the_secret(run, recorder):
    errors = pytest.importorskip('ansible_collections.underlay.alicloud.plugins.module_utils.errors')
    recorder.error = errors.AlicloudApiError('DescribeInstances', 'Forbidden.RAM', 'not authorized', request_id='R-1')
    with pytest.raises(AnsibleError) as caught:
        run({'access_key_id': 'LTAIunit', 'access_key_secret': SECRET})
    text = str(caught.value)
    assert 'DescribeInstances failed: Forbidden.RAM' in text and 'R-1' in text
    assert SECRET not in text and '\n' not in text


def test_bad_endpoint_is_a_clear_error(run, recorder):
    with pytest.raises(AnsibleError, match='ftp://nowhere'):
        run({'ecs_endpoint': 'ftp://nowhere'})
    assert recorder.calls == []


# --- cache ------------------------------------------------------------------------------------------------------

def cache_config(tmp_path, **extra):
    return dict({'cache': True, 'cache_plugin': 'ansible.builtin.jsonfile',
                 'cache_connection': str(tmp_path / 'cache'), 'cache_timeout': 600}, **extra)


def test_cache_hit_makes_no_call_and_gives_the_same_inventory(run, recorder, tmp_path):
    first, _plugin = run(cache_config(tmp_path, groups=KUBESPRAY_GROUPS))
    second, _plugin = run(cache_config(tmp_path, groups=KUBESPRAY_GROUPS))
    assert len(recorder.calls) == 1
    assert sorted(second.hosts) == sorted(first.hosts)
    assert hostvars(second, 'master') == hostvars(first, 'master')
    assert group_hosts(second, 'kube_node') == ['worker1']


def test_cache_keeps_plain_facts_so_presentation_options_need_no_refresh(run, recorder, tmp_path):
    run(cache_config(tmp_path))
    inventory, _plugin = run(cache_config(tmp_path, hostnames=['tag:Name', 'instance_id'], hostvars_prefix='p_'))
    assert len(recorder.calls) == 1
    assert sorted(inventory.hosts) == ['i-sh1other', 'm', 'w1']
    files = list((tmp_path / 'cache').iterdir())
    assert len(files) == 1
    stored = json.loads(files[0].read_text())
    # ansible-core 2.19 wraps the value in a serialization envelope; the value is the facts as one JSON document.
    payload = json.loads(stored['__payload__']) if '__payload__' in stored else stored
    assert json.loads(payload) == HOSTS


def test_cache_miss_when_flushed_or_query_changes(run, recorder, tmp_path):
    run(cache_config(tmp_path))
    run(cache_config(tmp_path), cache=False)          # --flush-cache / refresh_inventory
    assert len(recorder.calls) == 2
    run(cache_config(tmp_path, filters={'Status': 'Running'}))
    assert len(recorder.calls) == 3
    run(cache_config(tmp_path, filters={'Status': 'Running'}))
    assert len(recorder.calls) == 3


def test_cache_off_always_calls(run, recorder):
    run({})
    run({})
    assert len(recorder.calls) == 2


def test_cache_never_stores_the_secret(run, tmp_path):
    run(cache_config(tmp_path, access_key_id='LTAIunit', access_key_secret=SECRET))
    for path in (tmp_path / 'cache').iterdir():
        assert SECRET not in path.name and SECRET not in path.read_text()


# --- constructed options at fleet scale: evaluated once per distinct input -------------------------------------

def fleet(count=24):
    hosts = []
    for n in range(count):
        tags = {'cluster': 'c%d' % (n % 3), 'role': 'master' if n % 8 == 0 else 'worker'}
        if n % 5 == 0:
            tags['team'] = 'net'
        region, zone = ('cn-hangzhou', 'cn-hangzhou-i') if n % 2 else ('cn-shanghai', 'cn-shanghai-b')
        hosts.append(host('i-fleet%03d' % n, 'node-%03d' % n, tags, '10.0.%d.%d' % (n // 200, n % 200 + 10), region, zone))
    return hosts


FLEET_CONFIG = {
    'hostnames': ['instance_id'],
    'strict': False,
    'compose': {'ansible_user': "'ecs-user'", 'team_upper': 'alicloud_tags.team.upper()',
                'pod_ip': 'alicloud_enis[0].secondary_ips[0]'},
    'groups': dict(KUBESPRAY_GROUPS, net_team="alicloud_tags.team == 'net'", has_user="ansible_user == 'ecs-user'"),
    'keyed_groups': [{'key': 'alicloud_tags.cluster', 'prefix': 'cluster', 'parent_group': 'clusters'},
                     {'key': "alicloud_tags.team | default('')", 'prefix': 'team', 'default_value': 'none'},
                     {'key': "'cn-hangzhou'", 'prefix': 'alicloud_region'}],
}


def snapshot(inventory):
    groups = {name: sorted(h.name for h in group.hosts) for name, group in inventory.groups.items()}
    parents = {name: sorted(g.name for g in group.parent_groups) for name, group in inventory.groups.items()}
    return groups, parents, {name: hostvars(inventory, name) for name in inventory.hosts}


def test_memoised_constructed_options_match_per_host_evaluation(run, recorder):
    recorder.hosts = fleet()
    memoised, _plugin = run(FLEET_CONFIG)
    # A lookup makes the expressions volatile: every host is then evaluated on its own.
    volatile = dict(FLEET_CONFIG, compose=dict(FLEET_CONFIG['compose'], home="lookup('ansible.builtin.env', 'HOME')"))
    per_host, _plugin = run(volatile)
    groups, parents, variables = snapshot(per_host)
    for values in variables.values():
        values.pop('home')
    assert snapshot(memoised) == (groups, parents, variables)
    # Spot checks that the configuration really exercises each branch.
    assert group_hosts(memoised, 'alicloud_region_cn_hangzhou') == sorted(memoised.hosts)
    assert group_hosts(memoised, 'team_none') and group_hosts(memoised, 'team_net')
    assert hostvars(memoised, 'i-fleet000')['team_upper'] == 'NET' and 'team_upper' not in hostvars(memoised, 'i-fleet001')
    assert hostvars(memoised, 'i-fleet007')['pod_ip'] == '172.31.199.10'
    assert group_hosts(memoised, 'has_user') == sorted(memoised.hosts)


def test_conditionals_are_evaluated_once_per_distinct_input(run, recorder, monkeypatch):
    recorder.hosts = fleet(48)
    from ansible.template import Templar
    calls = []
    original = Templar.evaluate_conditional
    monkeypatch.setattr(Templar, 'evaluate_conditional', lambda self, conditional: calls.append(1) or original(self, conditional))
    inventory, _plugin = run({'hostnames': ['instance_id'], 'groups': KUBESPRAY_GROUPS})
    # The groups read alicloud_tags only: 3 clusters x 2 roles x team or not = at most 12 distinct inputs.
    distinct = {json.dumps(h['alicloud_tags'], sort_keys=True) for h in fleet(48)}
    assert len(calls) == 3 * len(distinct) < 3 * 48
    assert len(group_hosts(inventory, 'k8s_cluster')) == 48


def test_expression_refs():
    module = sys.modules[type(inventory_loader.get('underlay.alicloud.ecs')).__module__]
    assert module.expression_refs(["alicloud_tags.role | default('') == 'master'", 'alicloud_zone', True, None]) == \
        ['alicloud_tags', 'alicloud_zone']
    assert module.expression_refs(["{{ alicloud_region }}-x"]) == ['alicloud_region']
    assert module.expression_refs(["lookup('ansible.builtin.env', 'X')"]) is None
    assert module.expression_refs(['alicloud_tags | ansible.builtin.random']) is None
    assert module.expression_refs(['now() > 1']) is None
    assert module.expression_refs(['alicloud_tags.role ==']) is None
    assert module.expression_refs([{'not': 'a string'}]) is None


@pytest.mark.parametrize('failing', [False, True])
def test_garbage_collector_pauses_during_parse_and_leaves_the_facts_out_after(run, recorder, monkeypatch, failing):
    """The collector is off while the facts are fetched and added, back on after (also on failure), and the
    objects of the inventory are frozen out of its later passes."""
    seen = []

    def gather(*args, **kwargs):
        seen.append(gc.isenabled())
        if failing:
            raise AnsibleError('listing failed')
        return recorder(*args, **kwargs)
    module = sys.modules[type(inventory_loader.get('underlay.alicloud.ecs')).__module__]
    monkeypatch.setattr(module, 'gather_hosts', gather)
    frozen = gc.get_freeze_count()
    try:
        if failing:
            with pytest.raises(AnsibleError, match='listing failed'):
                run({})
        else:
            run({})
        assert seen == [False] and gc.isenabled()
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()
