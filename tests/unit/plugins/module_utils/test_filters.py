"""Filter and option-name validation: the API's own parameter names, the nearest name for a typo."""
import inspect

import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils import filters
from ansible_collections.underlay.alicloud.plugins.module_utils.filters import API_PARAMETERS, check_filters, nearest, unknown


def sdk_parameters(request_class):
    """Wire names of every field of an SDK request model (each field set, then serialised)."""
    request = request_class()
    for name in list(inspect.signature(request_class.__init__).parameters)[1:]:
        setattr(request, name, [])
    return set(request.to_map())


@pytest.mark.parametrize('action, package, model', [
    ('DescribeInstances', 'alibabacloud_ecs20140526.models', 'DescribeInstancesRequest'),
    ('DescribeNetworkInterfaces', 'alibabacloud_ecs20140526.models', 'DescribeNetworkInterfacesRequest'),
    ('DescribeVSwitches', 'alibabacloud_vpc20160428.models', 'DescribeVSwitchesRequest'),
])
def test_parameters_are_the_sdk_request_fields_minus_region_and_paging(action, package, model):
    sdk = sdk_parameters(getattr(pytest.importorskip(package), model))
    assert API_PARAMETERS[action] == sdk - set(filters.MANAGED_PARAMETERS)


@pytest.mark.parametrize('name, expected', [
    ('Statuss', 'Status'), ('Tags', 'Tag'), ('status', 'Status'), ('vpc_id', 'VpcId'), ('Tag.1.Key', 'Tag'),
    ('VswitchId', 'VSwitchId'), ('InstanceId', 'InstanceIds'), ('Foo', None), ('', None),
])
def test_nearest_ignores_case_separators_and_flattened_suffixes(name, expected):
    assert nearest(name, API_PARAMETERS['DescribeInstances']) == expected


def test_unknown_names_the_nearest_or_lists_all():
    assert unknown('option', 'filter', ['filters', 'regions']) == "unknown option 'filter' (did you mean 'filters'?)"
    assert unknown('option', 'zzz', ['regions', 'filters']) == "unknown option 'zzz' (expected one of: filters, regions)"


@pytest.mark.parametrize('action, value', [
    ('DescribeInstances', {'Status': 'Running', 'VpcId': 'vpc-1', 'InstanceIds': ['i-1'], 'Tag': [{'Key': 'a', 'Value': 'b'}]}),
    ('DescribeInstances', {'Tag': {'cluster': 'lab'}, 'Filter': [{'Key': 'CreationStartTime', 'Value': '2024-01-01T00:00Z'}]}),
    ('DescribeInstances', {'Tag': [{'Key': 'cluster'}]}),
    ('DescribeNetworkInterfaces', {'Status': 'InUse', 'NetworkInterfaceId': ['eni-1'], 'Type': 'Secondary'}),
    ('DescribeVSwitches', {'EnableIpv6': True, 'IsDefault': False, 'Tag': [{'Key': 'env', 'Value': 'lab'}]}),
    ('DescribeVSwitches', {}),
])
def test_valid_filters_pass(action, value):
    check_filters(action, value)


@pytest.mark.parametrize('action, value, where, message', [
    ('DescribeInstances', {'Statuss': 'Running'}, 'filters',
     "filters: unknown DescribeInstances parameter 'Statuss' (did you mean 'Status'?)"),
    ('DescribeInstances', {'Status': 'Running', 'Tags': [{'Key': 'cluster', 'Value': 'lab'}]}, 'include_filters[1]',
     "include_filters[1]: unknown DescribeInstances parameter 'Tags' (did you mean 'Tag'?)"),
    ('DescribeInstances', {'Zzz': 1}, 'filters', "filters: unknown DescribeInstances parameter 'Zzz' (expected one of: AdditionalAttributes, "),
    ('DescribeInstances', {'RegionId': 'cn-beijing'}, 'filters',
     'filters: RegionId is set by the collection itself (from the region option); remove it'),
    ('DescribeInstances', {'NextToken': 'x'}, 'filters', 'filters: NextToken is set by the collection itself (every page is read); remove it'),
    ('DescribeInstances', {'Tag': [{'key': 'cluster', 'value': 'lab'}]}, 'filters', "filters: Tag[0]: unknown key 'key' (did you mean 'Key'?)"),
    ('DescribeInstances', {'Tag': [{'Key': 'a'}, {'Value': 'b'}]}, 'filters', 'filters: Tag[1] has no Key'),
    ('DescribeInstances', {'Tag': 'cluster=lab'}, 'filters',
     "filters: Tag must be a list of Key/Value mappings or a mapping of tag keys to values, got 'cluster=lab'"),
    ('DescribeInstances', {'Filter': {'CreationStartTime': 'x'}}, 'filters',
     "filters: Filter must be a list of Key/Value mappings, got {'CreationStartTime': 'x'}"),
    ('DescribeInstances', ['Status'], 'exclude_filters[0]', 'exclude_filters[0] must be a mapping of DescribeInstances parameters, got list'),
    ('DescribeNetworkInterfaces', {'InstanceIds': ['i-1']}, 'filters',
     "filters: unknown DescribeNetworkInterfaces parameter 'InstanceIds' (did you mean 'InstanceId'?)"),
    ('DescribeVSwitches', {'EnabledIpv6': True}, 'filters',
     "filters: unknown DescribeVSwitches parameter 'EnabledIpv6' (did you mean 'EnableIpv6'?)"),
])
def test_bad_filters_name_the_key_and_the_nearest_valid_one(action, value, where, message):
    with pytest.raises(ValueError) as err:
        check_filters(action, value, where)
    assert str(err.value).startswith(message) and '\n' not in str(err.value)
