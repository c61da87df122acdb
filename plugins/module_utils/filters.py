# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of user-given filters and option names, before any API call.

The Describe* APIs ignore request parameters they do not know, so a misspelt filter key
(``Statuss``, ``Tags``) would silently list every resource of the region. Every key is therefore
checked against the request parameters of the API it is sent to; an unknown one is an error naming
it and the nearest valid name.

The parameter names are those of the SDK request models, alibabacloud-ecs20140526 7.11.8
(``DescribeInstancesRequest``, ``DescribeNetworkInterfacesRequest``) and alibabacloud-vpc20160428
7.2.2 (``DescribeVSwitchesRequest``); a unit test compares them with the installed SDK. They are
listed here because importing the SDK models costs about 0.4 s and a bad input must fail without it.
"""

from __future__ import annotations

import difflib
import re

# Set by the collection itself, with the reason given in the error.
MANAGED_PARAMETERS = {'RegionId': 'from the region option', 'MaxResults': 'every page is read',
                      'NextToken': 'every page is read', 'PageNumber': 'every page is read', 'PageSize': 'every page is read'}

_ACCOUNT_PARAMETERS = ('OwnerAccount', 'OwnerId', 'ResourceOwnerAccount', 'ResourceOwnerId')

API_PARAMETERS = {
    'DescribeInstances': frozenset(_ACCOUNT_PARAMETERS + (
        'AdditionalAttributes', 'DeviceAvailable', 'DryRun', 'EipAddresses', 'Filter', 'HpcClusterId', 'HttpEndpoint',
        'HttpPutResponseHopLimit', 'HttpTokens', 'ImageId', 'InnerIpAddresses', 'InstanceChargeType', 'InstanceIds',
        'InstanceName', 'InstanceNetworkType', 'InstanceType', 'InstanceTypeFamily', 'InternetChargeType', 'IoOptimized',
        'Ipv6Address', 'KeyPairName', 'LockReason', 'NeedSaleCycle', 'PrivateIpAddresses', 'PublicIpAddresses',
        'RdmaIpAddresses', 'ResourceGroupId', 'SecurityGroupId', 'Status', 'Tag', 'VSwitchId', 'VpcId', 'ZoneId')),
    'DescribeNetworkInterfaces': frozenset(_ACCOUNT_PARAMETERS + (
        'InstanceId', 'Ipv6Address', 'NetworkInterfaceId', 'NetworkInterfaceName', 'PrimaryIpAddress', 'PrivateIpAddress',
        'ResourceGroupId', 'SecurityGroupId', 'ServiceManaged', 'Status', 'Tag', 'Type', 'VSwitchId', 'VpcId')),
    'DescribeVSwitches': frozenset(_ACCOUNT_PARAMETERS + (
        'DryRun', 'EnableIpv6', 'IsDefault', 'ResourceGroupId', 'RouteTableId', 'Tag', 'VSwitchId', 'VSwitchName',
        'VSwitchOwnerId', 'VpcId', 'ZoneId')),
}

# List parameters whose entries are mappings (flattened to Tag.1.Key, Tag.1.Value, ...): a misspelt
# entry key is ignored by the API just like a misspelt parameter.
ENTRY_KEYS = ('Key', 'Value')
MAPPING_LIST_PARAMETERS = ('Tag', 'Filter')


def _fold(name):
    """Compare names without case, separators or a flattened ``.N...`` suffix: vpc_id ~ VpcId, Tag.1.Key ~ Tag."""
    return re.sub(r'[^a-z0-9]', '', str(name).split('.', 1)[0].lower())


def nearest(name, valid):
    """The name in ``valid`` closest to ``name``, or None when none is close."""
    folded = dict((_fold(candidate), candidate) for candidate in sorted(valid))
    match = difflib.get_close_matches(_fold(name), list(folded), n=1, cutoff=0.6)
    return folded[match[0]] if match else None


def unknown(what, name, valid):
    """One-line text for an unknown ``name``: the nearest valid name, or all of them when none is near."""
    suggestion = nearest(name, valid)
    if suggestion is not None:
        return 'unknown %s %r (did you mean %r?)' % (what, name, suggestion)
    return 'unknown %s %r (expected one of: %s)' % (what, name, ', '.join(sorted(valid)))


def _check_entries(where, key, value):
    # Tag may also be a {tag key: value} mapping; it is turned into Key/Value entries before the call.
    if key == 'Tag' and isinstance(value, dict):
        return
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise ValueError('%s: %s must be a list of Key/Value mappings%s, got %r'
                         % (where, key, ' or a mapping of tag keys to values' if key == 'Tag' else '', value))
    for index, entry in enumerate(value):
        for name in entry:
            if name not in ENTRY_KEYS:
                raise ValueError('%s: %s[%d]: %s' % (where, key, index, unknown('key', name, ENTRY_KEYS)))
        if 'Key' not in entry:
            raise ValueError('%s: %s[%d] has no Key' % (where, key, index))


def check_filters(action, filters, where='filters'):
    """Raise ValueError, naming the key and the nearest valid one, unless every key of ``filters`` is a
    request parameter of ``action`` that users may set (not the region or paging)."""
    if not isinstance(filters, dict):
        raise ValueError('%s must be a mapping of %s parameters, got %s' % (where, action, type(filters).__name__))
    for key, value in filters.items():
        if key in MANAGED_PARAMETERS:
            raise ValueError('%s: %s is set by the collection itself (%s); remove it' % (where, key, MANAGED_PARAMETERS[key]))
        if key not in API_PARAMETERS[action]:
            raise ValueError('%s: %s' % (where, unknown('%s parameter' % action, key, API_PARAMETERS[action])))
        if key in MAPPING_LIST_PARAMETERS:
            _check_entries(where, key, value)
