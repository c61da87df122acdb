"""A hand-written, in-memory stand-in for the API side of AlicloudClients (unit tests only).

It pages like ECS/VPC (NextToken / PageNumber), records every request, and can fail chosen
requests, so paging, batching, retries and joins can be checked without the SDK or a server.
"""
import json
import random
import threading

from ansible_collections.underlay.alicloud.plugins.module_utils.client import flatten_query
from ansible_collections.underlay.alicloud.plugins.module_utils.errors import AlicloudApiError
from ansible_collections.underlay.alicloud.plugins.module_utils.retry import AlicloudRetry


def instance(iid, region='cn-hangzhou', vpc='vpc-1', vswitch='vsw-a', itype='ecs.g7.large', tags=None, enis=()):
    return {'InstanceId': iid, 'InstanceName': iid + '-name', 'HostName': iid[2:], 'RegionId': region,
            'ZoneId': region + '-i', 'Status': 'Running', 'InstanceType': itype,
            'VpcAttributes': {'VpcId': vpc, 'VSwitchId': vswitch, 'PrivateIpAddress': {'IpAddress': ['10.0.0.9']}},
            'Tags': {'Tag': [{'TagKey': k, 'TagValue': v} for k, v in (tags or {}).items()]},
            'NetworkInterfaces': {'NetworkInterface': [{'NetworkInterfaceId': e} for e in enis]}}


def eni(eid, owner, vswitch='vsw-a', eni_type='Primary', index=0, primary='10.0.0.10', secondary=(), ipv6=(), vpc='vpc-1'):
    ips = [{'PrivateIpAddress': primary, 'Primary': True}] + [{'PrivateIpAddress': ip, 'Primary': False} for ip in secondary]
    record = {'NetworkInterfaceId': eid, 'Type': eni_type, 'Status': 'InUse' if owner else 'Available',
              'InstanceId': owner or '', 'VpcId': vpc, 'VSwitchId': vswitch, 'ZoneId': 'cn-hangzhou-i',
              'MacAddress': '00:16:3E:00:00:%02X' % (hash(eid) % 256), 'PrivateIpAddress': primary,
              'PrivateIpSets': {'PrivateIpSet': ips}, 'Ipv6Sets': {'Ipv6Set': [{'Ipv6Address': a} for a in ipv6]}}
    if index is not None:
        record['Attachment'] = {'InstanceId': owner, 'DeviceIndex': index, 'NetworkCardIndex': 0}
    return record


def vswitch(vid, cidr, vpc='vpc-1', ipv6=None):
    return {'VSwitchId': vid, 'VSwitchName': vid + '-name', 'VpcId': vpc, 'ZoneId': 'cn-hangzhou-i', 'CidrBlock': cidr,
            'Ipv6CidrBlock': ipv6 or '', 'AvailableIpAddressCount': 100, 'Status': 'Available', 'IsDefault': False,
            'Tags': {'Tag': [{'Key': 'env', 'Value': 'lab'}]}}


def itype(tid, enis=3, ipv4=6, ipv6=6):
    return {'InstanceTypeId': tid, 'EniQuantity': enis, 'EniPrivateIpAddressQuantity': ipv4, 'EniIpv6AddressQuantity': ipv6}


class FakeClients:
    """Quacks like AlicloudClients for ecs.py/gather.py: ``region``, ``retry`` and ``call``."""

    def __init__(self, regions, fail=None, max_attempts=4):
        self.regions = regions        # {region: {'instances': [...], 'enis': [...], 'vswitches': [...], 'types': [...]}}
        self.eni_page_size = 1000     # PageSize maximum of DescribeNetworkInterfaces (older API versions: 100)
        self.region = 'cn-hangzhou'
        self.fail = fail or (lambda action, query, n: None)
        self.requests = []
        self.lock = threading.Lock()
        self.retry = AlicloudRetry(max_attempts=max_attempts, sleep=lambda s: None, rng=random.Random(1))

    def calls(self, action=None):
        return [q for a, q in self.requests if action is None or a == action]

    def call(self, service, region, action, query=None):
        query = flatten_query(query or {})  # what the real client puts on the wire
        with self.lock:
            self.requests.append((action, query))
            n = len(self.requests)
        error = self.fail(action, query, n)
        if error:
            raise error
        assert service == ('vpc' if action == 'DescribeVSwitches' else 'ecs')
        data = self.regions.get(query.get('RegionId', region))
        if data is None and action != 'DescribeInstanceTypes':
            raise AlicloudApiError(action, 'InvalidRegionId.NotFound', 'no region', status=404)
        return getattr(self, action)(data, query)

    @staticmethod
    def _token_page(items, query, container, item, max_results):
        size = int(query['MaxResults'])
        assert 1 <= size <= max_results
        start = int(query.get('NextToken') or 0)
        page = items[start:start + size]
        token = str(start + size) if start + size < len(items) else ''
        return {'RequestId': 'r', 'NextToken': token, container: {item: page}}

    @staticmethod
    def _paged(items, query, container, item, max_results, max_page_size):
        """NextToken paging when MaxResults or NextToken is given, else PageNumber/PageSize with TotalCount
        (a PageSize above ``max_page_size`` is served as ``max_page_size``)."""
        if 'MaxResults' in query or 'NextToken' in query:
            return FakeClients._token_page(items, query, container, item, max_results)
        size, number = min(int(query['PageSize']), max_page_size), int(query['PageNumber'])
        assert size >= 1 and number >= 1
        return {'RequestId': 'r', 'TotalCount': len(items), 'PageNumber': number, 'PageSize': size,
                container: {item: items[(number - 1) * size:number * size]}}

    def DescribeInstances(self, data, query):  # noqa: N802
        items = data['instances']
        if 'InstanceIds' in query:
            ids = json.loads(query['InstanceIds'])
            assert len(ids) <= 100
            items = [i for i in items if i['InstanceId'] in ids]
        if 'VpcId' in query:
            items = [i for i in items if i['VpcAttributes']['VpcId'] == query['VpcId']]
        if 'Tag.1.Key' in query:
            items = [i for i in items if {'TagKey': query['Tag.1.Key'], 'TagValue': query['Tag.1.Value']} in i['Tags']['Tag']]
        return self._paged(items, query, 'Instances', 'Instance', 100, 100)

    def DescribeNetworkInterfaces(self, data, query):  # noqa: N802
        items = data['enis']
        ids = [v for k, v in query.items() if k.startswith('NetworkInterfaceId.')]
        assert len(ids) <= 100
        if ids:
            items = [e for e in items if e['NetworkInterfaceId'] in ids]
        if 'VpcId' in query:
            items = [e for e in items if e['VpcId'] == query['VpcId']]
        return self._paged(items, query, 'NetworkInterfaceSets', 'NetworkInterfaceSet', 500, self.eni_page_size)

    def DescribeVSwitches(self, data, query):  # noqa: N802
        size, number = int(query['PageSize']), int(query['PageNumber'])
        assert size <= 50
        items = [v for v in data['vswitches'] if 'VpcId' not in query or v['VpcId'] == query['VpcId']]
        return {'RequestId': 'r', 'TotalCount': len(items), 'PageNumber': number, 'PageSize': size,
                'VSwitches': {'VSwitch': items[(number - 1) * size:number * size]}}

    def DescribeInstanceTypes(self, data, query):  # noqa: N802
        wanted = [v for k, v in query.items() if k.startswith('InstanceTypes.')]
        assert 1 <= len(wanted) <= 10
        known = [t for region in self.regions.values() for t in region['types']]
        items = [t for t in known if t['InstanceTypeId'] in wanted]
        return self._token_page(items, query, 'InstanceTypes', 'InstanceType', 100)

    def DescribeRegions(self, data, query):  # noqa: N802
        return {'RequestId': 'r', 'Regions': {'Region': [{'RegionId': r} for r in sorted(self.regions)]}}

    def generic(self, data, query):
        return {'RequestId': 'r'}

    AssignPrivateIpAddresses = UnassignPrivateIpAddresses = AssignIpv6Addresses = UnassignIpv6Addresses = generic
    CreateNetworkInterface = AttachNetworkInterface = DetachNetworkInterface = DeleteNetworkInterface = generic
