"""North-south egress for the ECS/VPC emulator: NAT gateways, SNAT tables, EIPs, IPv6 gateways and
IPv6 Internet bandwidth (VPC API 2016-04-28), plus DescribeVpcs and TagResources/UnTagResources.

Hooked into ecs_emulator by three calls: ``load(world, regions_spec)`` at the end of World(),
``dump(world, out)`` in World.dump() and ``install(api)`` in Api().  Response shapes follow the
alibabacloud-vpc20160428 response models; error codes are the ones Alibaba's API reference lists
for these actions (docs/emulator.md names the few that are modelled without a documented code).
Like the rest of the emulator this never imports the collection's code.
"""

import ipaddress
import sys

EIP_RANGES = {'PayByTraffic': (1, 200), 'PayByBandwidth': (1, 500)}
IPV6_RANGES = {'PayByTraffic': (1, 1000), 'PayByBandwidth': (1, 2000)}
DEFAULT_QUOTAS = {'eips': 20, 'nat_gateways': 10, 'snat_entries': 200}
TAGGABLE = {'EIP': 'eips', 'NATGATEWAY': 'nats', 'IPV6GATEWAY': 'ipv6_gateways', 'IPV6ADDRESS': 'ipv6'}
CREATED = '2024-04-14T22:32:00Z'


def _emu(obj):
    """The ecs_emulator module that defined ``obj``'s class (whatever name it was imported under)."""
    return sys.modules[type(obj).__module__]


class Egress:
    """Per-world egress state; resources are dicts keyed by id, ordered by creation."""

    def __init__(self):
        self.nats = {}            # ngw-... -> {id, region, vpc, vswitch, name, description, tags, status, steps, private_ip, table, fwd}
        self.entries = {}         # snat-... -> {id, table, nat, name, vswitch, cidr, ips, status, steps}
        self.eips = {}            # eip-... -> {id, region, ip, name, bandwidth, charge, tags, nat, status}
        self.ipv6_gateways = {}   # ipv6gw-... -> {id, region, vpc, name, tags}
        self.ipv6 = {}            # address -> {'band': {id, bandwidth, charge} or None, 'tags': {}}
        self.quotas = {}          # region -> {eips, nat_gateways, snat_entries}
        self.ip_counter = 0

    def new_ip(self):
        self.ip_counter += 1
        return '47.96.%d.%d' % (self.ip_counter // 250, 10 + self.ip_counter % 250)


# -- world file --------------------------------------------------------------------------------

def load(world, regions):
    """Read ``regions.<id>.egress`` of a world spec into ``world.egress``."""
    emu = _emu(world)
    state = world.egress = Egress()
    for region_id, rspec in (regions or {}).items():
        spec = (rspec or {}).get('egress') or {}
        region = world.regions[str(region_id)]
        state.quotas[region.id] = dict(DEFAULT_QUOTAS, **(spec.get('quotas') or {}))
        for gspec in spec.get('ipv6_gateways') or []:
            if gspec.get('vpc') not in region.vpcs:
                raise emu.WorldError('IPv6 gateway %s: vpc %r is not a VPC of %s' % (gspec.get('id'), gspec.get('vpc'), region.id))
            gid = gspec.get('id') or world.new_id('ipv6gw', region.id)
            state.ipv6_gateways[gid] = {'id': gid, 'region': region.id, 'vpc': gspec['vpc'], 'name': gspec.get('name', ''),
                                        'tags': dict(gspec.get('tags') or {})}
        for espec in spec.get('eips') or []:
            eid = espec.get('id') or world.new_id('eip', region.id)
            state.eips[eid] = {'id': eid, 'region': region.id, 'ip': espec.get('ip') or state.new_ip(),
                               'name': espec.get('name', ''), 'bandwidth': int(espec.get('bandwidth', 5)),
                               'charge': espec.get('internet_charge_type', 'PayByTraffic'), 'tags': dict(espec.get('tags') or {}),
                               'nat': None, 'status': 'Available'}
        for nspec in spec.get('nat_gateways') or []:
            _load_nat(world, state, region, nspec, emu)
        for bspec in spec.get('ipv6_bandwidths') or []:
            address = str(ipaddress.ip_address(bspec['address']))
            state.ipv6[address] = {'band': {'id': bspec.get('id') or world.new_id('ipv6bw', region.id),
                                            'bandwidth': int(bspec.get('bandwidth', 1)),
                                            'charge': bspec.get('internet_charge_type', 'PayByTraffic')},
                                   'tags': dict(bspec.get('tags') or {})}


def _load_nat(world, state, region, nspec, emu):
    vsw = world.vswitches.get(nspec.get('vswitch'))
    if vsw is None or vsw.region != region.id:
        raise emu.WorldError('NAT gateway %s: vswitch %r is not a vSwitch of %s' % (nspec.get('id'), nspec.get('vswitch'), region.id))
    nid = nspec.get('id') or world.new_id('ngw', region.id)
    private_ip = nspec.get('private_ip') or vsw.lowest_free(1, 4)[0]
    vsw.take([private_ip], 4)
    nat = {'id': nid, 'region': region.id, 'vpc': vsw.vpc, 'vswitch': vsw.id, 'name': nspec.get('name', ''),
           'description': nspec.get('description', ''), 'tags': dict(nspec.get('tags') or {}), 'status': 'Available',
           'steps': 0, 'private_ip': private_ip, 'table': nspec.get('snat_table') or world.new_id('stb', region.id),
           'fwd': world.new_id('ftb', region.id)}
    state.nats[nid] = nat
    for eid in nspec.get('eips') or []:
        if eid not in state.eips:
            raise emu.WorldError('NAT gateway %s: EIP %s is not listed under eips' % (nid, eid))
        state.eips[eid].update(nat=nid, status='InUse')
    for sspec in nspec.get('snat_entries') or []:
        sid = sspec.get('id') or world.new_id('snat', region.id)
        source_vsw = sspec.get('source_vswitch')
        cidr = str(world.vswitches[source_vsw].net) if source_vsw else str(ipaddress.ip_network(sspec['source_cidr']))
        state.entries[sid] = {'id': sid, 'table': nat['table'], 'nat': nid, 'name': sspec.get('name', ''),
                              'vswitch': source_vsw, 'cidr': cidr, 'ips': list(sspec.get('snat_ips') or []),
                              'status': 'Available', 'steps': 0}


def dump(world, out):
    """Write the egress state back under ``regions.<id>.egress`` (only regions that have some)."""
    state = getattr(world, 'egress', None)
    if state is None:
        return
    for region_id, rout in out['regions'].items():
        spec = {}
        gateways = [{'id': g['id'], 'vpc': g['vpc'], 'name': g['name'], 'tags': g['tags']}
                    for g in state.ipv6_gateways.values() if g['region'] == region_id]
        eips = [{'id': e['id'], 'ip': e['ip'], 'name': e['name'], 'bandwidth': e['bandwidth'],
                 'internet_charge_type': e['charge'], 'tags': e['tags']} for e in state.eips.values() if e['region'] == region_id]
        nats = []
        for nat in state.nats.values():
            if nat['region'] != region_id:
                continue
            entries = [dict({'id': s['id'], 'name': s['name'], 'snat_ips': s['ips']},
                            **({'source_vswitch': s['vswitch']} if s['vswitch'] else {'source_cidr': s['cidr']}))
                       for s in state.entries.values() if s['nat'] == nat['id']]
            nats.append({'id': nat['id'], 'name': nat['name'], 'vswitch': nat['vswitch'], 'private_ip': nat['private_ip'],
                         'snat_table': nat['table'], 'tags': nat['tags'],
                         'eips': [e['id'] for e in state.eips.values() if e['nat'] == nat['id']], 'snat_entries': entries})
        bands = [{'address': a, 'id': v['band']['id'], 'bandwidth': v['band']['bandwidth'],
                  'internet_charge_type': v['band']['charge'], 'tags': v['tags']}
                 for a, v in state.ipv6.items() if v['band'] and _address_region(world, a) == region_id]
        for key, value in (('ipv6_gateways', gateways), ('eips', eips), ('nat_gateways', nats), ('ipv6_bandwidths', bands)):
            if value:
                spec[key] = value
        if spec:
            if state.quotas.get(region_id, DEFAULT_QUOTAS) != DEFAULT_QUOTAS:
                spec['quotas'] = state.quotas[region_id]
            rout['egress'] = spec


def _address_region(world, address):
    for eni in world.enis.values():
        if address in eni.ipv6_ips:
            return eni.region
    return None


# -- actions -----------------------------------------------------------------------------------

def install(api):
    """Register the egress actions on an emulator Api."""
    actions = Actions(api)
    version = _emu(api).VPC_VERSION
    for name in ('DescribeVpcs', 'DescribeNatGateways', 'CreateNatGateway', 'DeleteNatGateway', 'DescribeEipAddresses',
                 'AllocateEipAddress', 'AssociateEipAddress', 'UnassociateEipAddress', 'ReleaseEipAddress',
                 'DescribeSnatTableEntries', 'CreateSnatEntry', 'ModifySnatEntry', 'DeleteSnatEntry', 'DescribeIpv6Gateways',
                 'DescribeIpv6Addresses', 'AllocateIpv6InternetBandwidth', 'ModifyIpv6InternetBandwidth',
                 'DeleteIpv6InternetBandwidth', 'TagResources', 'UnTagResources'):
        api.actions[(version, name)] = getattr(actions, _snake(name))
    api.idempotent.update({'CreateNatGateway', 'AllocateEipAddress', 'CreateSnatEntry', 'AssociateEipAddress',
                           'AllocateIpv6InternetBandwidth'})
    return actions


def _snake(name):
    out = ''
    for index, char in enumerate(name):
        if char.isupper() and index and not name[index - 1].isupper() and not name[index - 1].isdigit():
            out += '_'
        out += char.lower()
    return out.replace('ipv6', 'ipv6_').replace('__', '_').replace('un_tag', 'untag')


class Actions:
    """The egress actions over ``api.world.egress``."""

    def __init__(self, api):
        self.api = api
        self.emu = _emu(api)
        self.world = api.world
        if getattr(self.world, 'egress', None) is None:
            self.world.egress = Egress()
        self.state = self.world.egress

    # -- helpers -------------------------------------------------------------------------------

    def error(self, status, code, message):
        return self.emu.ApiError(status, code, message)

    def page(self, params, items, max_size):
        size = params.integer('PageSize', 10, 1, max_size)
        number = params.integer('PageNumber', 1, 1, 10 ** 9)
        return {'TotalCount': len(items), 'PageNumber': number, 'PageSize': size}, items[(number - 1) * size:number * size]

    def vpc_tags(self, params):
        return params.tags()

    def quota(self, region, key):
        return self.state.quotas.get(region.id, DEFAULT_QUOTAS).get(key, DEFAULT_QUOTAS[key])

    def nat(self, region, params, name='NatGatewayId'):
        nid = params.require(name)
        nat = self.state.nats.get(nid)
        if nat is None or nat['region'] != region.id:
            raise self.emu.not_found('InvalidNatGatewayId.NotFound', name, nid)
        return nat

    def eip(self, region, params):
        eid = params.require('AllocationId')
        eip = self.state.eips.get(eid)
        if eip is None or eip['region'] != region.id:
            raise self.error(404, 'InvalidAllocationId.NotFound', 'Specified allocation ID %s is not found' % eid)
        return eip

    def table_nat(self, region, table):
        for nat in self.state.nats.values():
            if nat['table'] == table and nat['region'] == region.id:
                return nat
        raise self.error(404, 'InvalidSnatTableId.NotFound', 'Specified SNAT table %s does not exist.' % table)

    def advance(self):
        """Asynchronous work moves one step per describe: Creating/Pending → Available, Deleting → gone."""
        for store in (self.state.nats, self.state.entries):
            for key in list(store):
                obj = store[key]
                if obj['steps'] > 0:
                    obj['steps'] -= 1
                    continue
                if obj['status'] in ('Creating', 'Pending'):
                    obj['status'] = 'Available'
                elif obj['status'] == 'Deleting':
                    del store[key]
                    if store is self.state.nats:
                        self.world.vswitches[obj['vswitch']].release([obj['private_ip']], 4)
        self.api.mutated()

    def steps(self):
        return max(0, int(self.api.attach_steps))

    @staticmethod
    def check_name(name, code='InvalidParameter.Name.Malformed'):
        return None if not name or (2 <= len(name) <= 128 and not name.startswith(('http://', 'https://'))) else code

    # -- VPCs ----------------------------------------------------------------------------------

    def describe_vpcs(self, params):
        region = self.api.region(params)
        vpc_id = params.get('VpcId')
        vpcs = [v for v in region.vpcs.values() if vpc_id is None or v['id'] in vpc_id.split(',')]
        body, page = self.page(params, vpcs, 50)
        items = []
        for vpc in page:
            item = {'VpcId': vpc['id'], 'VpcName': vpc['name'], 'RegionId': region.id, 'Status': 'Available',
                    'CidrBlock': str(vpc['cidrs'][0]), 'IsDefault': False, 'CreationTime': CREATED, 'Description': '',
                    'SecondaryCidrBlocks': {'SecondaryCidrBlock': [str(n) for n in vpc['cidrs'][1:]]},
                    'VSwitchIds': {'VSwitchId': [v.id for v in region.vswitches.values() if v.vpc == vpc['id']]},
                    'EnabledIpv6': bool(vpc['ipv6_cidr']), 'Ipv6CidrBlock': vpc['ipv6_cidr'] or '',
                    'OwnerId': int(self.emu.OWNER_ID), 'ResourceGroupId': '', 'Tags': {'Tag': []}}
            items.append(item)
        body['Vpcs'] = {'Vpc': items}
        return body

    # -- NAT gateways --------------------------------------------------------------------------

    def nat_json(self, nat):
        eips = [e for e in self.state.eips.values() if e['nat'] == nat['id']]
        used = set(ip for s in self.state.entries.values() if s['nat'] == nat['id'] for ip in s['ips'])
        return {
            'NatGatewayId': nat['id'], 'Name': nat['name'], 'Description': nat['description'], 'VpcId': nat['vpc'],
            'RegionId': nat['region'], 'Status': nat['status'], 'BusinessStatus': 'Normal', 'NatType': 'Enhanced',
            'NetworkType': 'internet', 'InstanceChargeType': 'PostPaid', 'InternetChargeType': 'PayByLcu', 'Spec': '',
            'EipBindMode': 'MULTI_BINDED', 'DeletionProtection': False, 'EcsMetricEnabled': False, 'IcmpReplyEnabled': True,
            'CreationTime': CREATED, 'ExpiredTime': '', 'ResourceGroupId': '', 'AutoPay': False,
            'SnatTableIds': {'SnatTableId': [nat['table']]}, 'ForwardTableIds': {'ForwardTableId': [nat['fwd']]},
            'FullNatTableIds': {'FullNatTableId': []},
            'IpLists': {'IpList': [{'AllocationId': e['id'], 'IpAddress': e['ip'], 'PrivateIpAddress': nat['private_ip'],
                                    'UsingStatus': 'UsedBySnatTable' if e['ip'] in used else 'Idle',
                                    'SnatEntryEnabled': e['ip'] in used} for e in eips]},
            'NatGatewayPrivateInfo': {'VswitchId': nat['vswitch'], 'PrivateIpAddress': nat['private_ip'],
                                      'EniInstanceId': 'eni-%s' % nat['id'][4:], 'IzNo': self.world.vswitches[nat['vswitch']].zone,
                                      'MaxBandwidth': 5000, 'EniType': 'indirect'},
            'Tags': {'Tag': [{'TagKey': k, 'TagValue': v} for k, v in nat['tags'].items()]},
        }

    def describe_nat_gateways(self, params):
        region = self.api.region(params)
        self.advance()
        tags = self.vpc_tags(params)
        filters = {'VpcId': 'vpc', 'NatGatewayId': 'id', 'Name': 'name', 'Status': 'status'}
        nats = [n for n in self.state.nats.values() if n['region'] == region.id
                and all(params.get(k) is None or n[f] == params.get(k) for k, f in filters.items())
                and self.emu.tags_match(n['tags'], tags)]
        body, page = self.page(params, nats, 50)
        body['NatGateways'] = {'NatGateway': [self.nat_json(n) for n in page]}
        return body

    def create_nat_gateway(self, params):
        region = self.api.region(params)
        vpc_id = params.require('VpcId')
        if vpc_id not in region.vpcs:
            raise self.error(404, 'InvalidVpcId.NotFound', 'Specified value of VpcId %s is not found in our record.' % vpc_id)
        vsw_id = params.require('VSwitchId')
        vsw = region.vswitches.get(vsw_id)
        if vsw is None or vsw.vpc != vpc_id:
            raise self.emu.not_found('InvalidVSwitchId.NotFound', 'VSwitchId', vsw_id)
        if params.get('NatType', 'Enhanced') != 'Enhanced':
            raise self.emu.bad_param('NatType', params.get('NatType'), 'Enhanced')
        if params.get('NetworkType', 'internet') not in ('internet', 'intranet'):
            raise self.emu.bad_param('NetworkType', params.get('NetworkType'), 'internet or intranet')
        name = params.get('Name', '')
        if self.check_name(name):
            raise self.error(400, 'InvalidParameter.Name.Malformed', 'The specified Name "%s" is not valid.' % name)
        if sum(1 for n in self.state.nats.values() if n['region'] == region.id) >= self.quota(region, 'nat_gateways'):
            raise self.error(400, 'QuotaExceeded.NatGateway', 'The NAT gateway quota of region %s is used up.' % region.id)
        private_ip = vsw.lowest_free(1, 4)[0]
        vsw.take([private_ip], 4)
        nid = self.world.new_id('ngw', region.id)
        nat = {'id': nid, 'region': region.id, 'vpc': vpc_id, 'vswitch': vsw_id, 'name': name,
               'description': params.get('Description', ''), 'tags': {k: v or '' for k, v in params.tags()},
               'status': 'Creating', 'steps': self.steps(), 'private_ip': private_ip,
               'table': self.world.new_id('stb', region.id), 'fwd': self.world.new_id('ftb', region.id)}
        self.state.nats[nid] = nat
        self.api.mutated()
        return {'NatGatewayId': nid, 'SnatTableIds': {'SnatTableId': [nat['table']]},
                'ForwardTableIds': {'ForwardTableId': [nat['fwd']]}, 'FullNatTableIds': {'FullNatTableId': []}}

    def delete_nat_gateway(self, params):
        region = self.api.region(params)
        nat = self.nat(region, params)
        entries = [s for s in self.state.entries.values() if s['nat'] == nat['id']]
        eips = [e for e in self.state.eips.values() if e['nat'] == nat['id']]
        if not params.boolean('Force'):
            if entries:
                raise self.error(400, 'DependencyViolation.SnatEntry', 'The NAT gateway %s still has SNAT entries.' % nat['id'])
            if eips:
                raise self.error(400, 'DependencyViolation.EIPS', 'The NAT gateway %s still has EIPs associated.' % nat['id'])
        for entry in entries:
            del self.state.entries[entry['id']]
        for eip in eips:
            eip.update(nat=None, status='Available')
        nat.update(status='Deleting', steps=self.steps())
        self.api.mutated()
        return {}

    # -- EIPs ----------------------------------------------------------------------------------

    def eip_json(self, eip):
        nat = self.state.nats.get(eip['nat']) if eip['nat'] else None
        return {'AllocationId': eip['id'], 'IpAddress': eip['ip'], 'Name': eip['name'], 'Description': '',
                'Status': eip['status'], 'RegionId': eip['region'], 'Bandwidth': str(eip['bandwidth']),
                'InternetChargeType': eip['charge'], 'ChargeType': 'PostPaid', 'InstanceId': eip['nat'] or '',
                'InstanceType': 'Nat' if nat else '', 'InstanceRegionId': eip['region'] if nat else '',
                'PrivateIpAddress': nat['private_ip'] if nat else '', 'Mode': 'NAT', 'Netmode': 'public', 'ISP': 'BGP',
                'AllocationTime': CREATED, 'ExpiredTime': '', 'ResourceGroupId': '', 'DeletionProtection': False,
                'OperationLocks': {'LockReason': []}, 'Tags': self.emu.tag_list(eip['tags'], vpc_style=True)}

    def describe_eip_addresses(self, params):
        region = self.api.region(params)
        tags = self.vpc_tags(params)
        ids = params.get('AllocationId')
        ips = params.get('EipAddress')
        eips = [e for e in self.state.eips.values() if e['region'] == region.id
                and (ids is None or e['id'] in ids.split(','))
                and (ips is None or e['ip'] in ips.split(','))
                and (params.get('EipName') is None or e['name'] == params.get('EipName'))
                and (params.get('Status') is None or e['status'] == params.get('Status'))
                and (params.get('AssociatedInstanceId') is None or e['nat'] == params.get('AssociatedInstanceId'))
                and (params.get('AssociatedInstanceType') is None or (e['nat'] and params.get('AssociatedInstanceType') == 'Nat'))
                and self.emu.tags_match(e['tags'], tags)]
        body, page = self.page(params, eips, 100)
        body['EipAddresses'] = {'EipAddress': [self.eip_json(e) for e in page]}
        return body

    def allocate_eip_address(self, params):
        region = self.api.region(params)
        charge = params.get('InternetChargeType', 'PayByBandwidth')
        if charge not in EIP_RANGES:
            raise self.emu.bad_param('InternetChargeType', charge, 'PayByBandwidth or PayByTraffic')
        low, high = EIP_RANGES[charge]
        bandwidth = params.integer('Bandwidth', 5, low, high)
        if sum(1 for e in self.state.eips.values() if e['region'] == region.id) >= self.quota(region, 'eips'):
            raise self.error(400, 'QuotaExceeded.Eip', 'Elastic IP address quota exceeded.')
        eid = self.world.new_id('eip', region.id)
        eip = {'id': eid, 'region': region.id, 'ip': self.state.new_ip(), 'name': params.get('Name', ''), 'bandwidth': bandwidth,
               'charge': charge, 'tags': {k: v or '' for k, v in params.tags()}, 'nat': None, 'status': 'Available'}
        self.state.eips[eid] = eip
        self.api.mutated()
        return {'AllocationId': eid, 'EipAddress': eip['ip'], 'OrderId': '', 'ResourceGroupId': ''}

    def associate_eip_address(self, params):
        region = self.api.region(params)
        eip = self.eip(region, params)
        kind = params.get('InstanceType', 'EcsInstance')
        target = params.require('InstanceId')
        if kind != 'Nat':
            raise self.error(400, 'InvalidInstanceType.ValueNotSupported', 'The emulator associates EIPs with NAT gateways only (InstanceType=Nat).')
        nat = self.state.nats.get(target)
        if nat is None or nat['region'] != region.id:
            raise self.error(400, 'InvalidParams.NotFound', 'instance not found: %s' % target)
        if eip['status'] != 'Available':
            raise self.error(400, 'IncorrectEipStatus', 'Current elastic IP status does not support this operation (%s is %s with %s).'
                             % (eip['id'], eip['status'], eip['nat']))
        if nat['status'] != 'Available':
            raise self.error(400, 'IncorrectInstanceStatus', 'Current instance status does not support this operation.')
        eip.update(nat=nat['id'], status='InUse')
        self.api.mutated()
        return {}

    def unassociate_eip_address(self, params):
        region = self.api.region(params)
        eip = self.eip(region, params)
        if eip['nat'] is None or eip['nat'] != params.require('InstanceId'):
            raise self.error(400, 'IncorrectEipStatus', 'Current elastic IP status does not support this operation.')
        if any(eip['ip'] in s['ips'] for s in self.state.entries.values() if s['nat'] == eip['nat']):
            raise self.error(400, 'DependencyViolation.SnatEntry', 'The specified eip is in ip pool.')
        eip.update(nat=None, status='Available')
        self.api.mutated()
        return {}

    def release_eip_address(self, params):
        region = self.api.region(params)
        eip = self.eip(region, params)
        if eip['status'] != 'Available':
            raise self.error(400, 'IncorrectEipStatus', 'Current elastic IP status does not support this operation.')
        del self.state.eips[eip['id']]
        self.api.mutated()
        return {}

    # -- SNAT entries --------------------------------------------------------------------------

    def entry_json(self, entry):
        return {'SnatEntryId': entry['id'], 'SnatTableId': entry['table'], 'NatGatewayId': entry['nat'],
                'SnatEntryName': entry['name'], 'SourceVSwitchId': entry['vswitch'] or '', 'SourceCIDR': entry['cidr'],
                'SnatIp': ','.join(entry['ips']), 'Status': entry['status'], 'EipAffinity': 0, 'NetworkInterfaceId': ''}

    def describe_snat_table_entries(self, params):
        region = self.api.region(params)
        self.advance()
        table = params.get('SnatTableId')
        if table is None:
            table = self.nat(region, params)['table']
        self.table_nat(region, table)
        filters = {'SnatEntryId': 'id', 'SnatEntryName': 'name', 'SourceVSwitchId': 'vswitch', 'SourceCIDR': 'cidr'}
        entries = [s for s in self.state.entries.values() if s['table'] == table
                   and all(params.get(k) is None or s[f] == params.get(k) for k, f in filters.items())
                   and (params.get('SnatIp') is None or params.get('SnatIp') in s['ips'])]
        body, page = self.page(params, entries, 50)
        body['SnatTableEntries'] = {'SnatTableEntry': [self.entry_json(s) for s in page]}
        return body

    def snat_ips(self, nat, text):
        ips = [ip.strip() for ip in text.split(',') if ip.strip()]
        on_nat = set(e['ip'] for e in self.state.eips.values() if e['nat'] == nat['id'])
        for ip in ips:
            try:
                ipaddress.IPv4Address(ip)
            except ValueError:
                raise self.error(400, 'InvalidSnatIp.Malformed', 'The specified SnatIp %s is not a valid IP address.' % ip) from None
            if ip not in on_nat:
                raise self.error(404, 'InvalidSnatIp.NotFound', 'Specified SnatIp %s does not found on the NAT Gateway' % ip)
        return ips

    def create_snat_entry(self, params):
        region = self.api.region(params)
        nat = self.table_nat(region, params.require('SnatTableId'))
        ips = self.snat_ips(nat, params.require('SnatIp'))
        name = params.get('SnatEntryName', '')
        if self.check_name(name):
            raise self.error(400, 'InvalidParameter.Name.Malformed', 'The specified Name "%s" is not valid.' % name)
        vsw_id, cidr = params.get('SourceVSwitchId'), params.get('SourceCIDR')
        if vsw_id:
            vsw = region.vswitches.get(vsw_id)
            if vsw is None or vsw.vpc != nat['vpc']:
                raise self.error(404, 'InvalidVSwitchId.NotFound', 'The specified virtual switch %s does not exists.' % vsw_id)
            net = vsw.net
        elif cidr:
            try:
                net = ipaddress.IPv4Network(cidr, strict=False)
            except ValueError:
                raise self.error(400, 'INVALID_PARAMETER', 'The parameter invalid: SourceCIDR %s.' % cidr) from None
            if not any(net.subnet_of(n) for n in region.vpcs[nat['vpc']]['cidrs']):
                raise self.error(400, 'NOT_ALLOW_USE_SOURCECIDR', 'SourceCIDR %s is outside the VPC %s.' % (net, nat['vpc']))
        else:
            raise self.emu.missing('SourceVSwitchId')
        entries = [s for s in self.state.entries.values() if s['table'] == nat['table']]
        if any(s['status'] == 'Pending' for s in entries):
            raise self.error(409, 'OperationConflict', 'Request was denied due to conflict with a previos request.')
        if vsw_id and any(s['vswitch'] == vsw_id for s in entries):
            raise self.error(400, 'Forbidden.SourceVSwitchId.Duplicated', 'The specified SourceCIDRis duplicated.')
        if any(s['cidr'] == str(net) for s in entries):
            raise self.error(400, 'OperationUnsupported.CidrConflict', 'The specified CIDR block conflicts with an existing SNAT entry.')
        if len(entries) >= self.quota(region, 'snat_entries'):
            raise self.error(400, 'Forbidden.SnatEntryCountLimited', "SNAT entry in the specified SNAT table reach it's limit.")
        sid = self.world.new_id('snat', region.id)
        self.state.entries[sid] = {'id': sid, 'table': nat['table'], 'nat': nat['id'], 'name': name, 'vswitch': vsw_id,
                                   'cidr': str(net), 'ips': ips, 'status': 'Pending', 'steps': self.steps()}
        self.api.mutated()
        return {'SnatEntryId': sid}

    def entry(self, region, params):
        nat = self.table_nat(region, params.require('SnatTableId'))
        sid = params.require('SnatEntryId')
        entry = self.state.entries.get(sid)
        if entry is None or entry['table'] != nat['table']:
            raise self.error(404, 'InvalidSnatEntryId.NotFound', 'The specified SNAT entry %s does not exist.' % sid)
        if entry['status'] != 'Available':
            raise self.error(400, 'IncorrectStatus.SnatEntry', 'The SNAT entry %s is %s.' % (sid, entry['status']))
        return nat, entry

    def modify_snat_entry(self, params):
        region = self.api.region(params)
        nat, entry = self.entry(region, params)
        if params.get('SnatIp'):
            entry['ips'] = self.snat_ips(nat, params.get('SnatIp'))
        if params.get('SnatEntryName'):
            entry['name'] = params.get('SnatEntryName')
        self.api.mutated()
        return {}

    def delete_snat_entry(self, params):
        region = self.api.region(params)
        _nat, entry = self.entry(region, params)
        entry.update(status='Deleting', steps=self.steps())
        self.api.mutated()
        return {}

    # -- IPv6 ----------------------------------------------------------------------------------

    def describe_ipv6_gateways(self, params):
        region = self.api.region(params)
        gateways = [g for g in self.state.ipv6_gateways.values() if g['region'] == region.id
                    and (params.get('VpcId') is None or g['vpc'] == params.get('VpcId'))
                    and (params.get('Ipv6GatewayId') is None or g['id'] == params.get('Ipv6GatewayId'))
                    and (params.get('Name') is None or g['name'] == params.get('Name'))]
        body, page = self.page(params, gateways, 50)
        body['Ipv6Gateways'] = {'Ipv6Gateway': [
            {'Ipv6GatewayId': g['id'], 'Name': g['name'], 'VpcId': g['vpc'], 'RegionId': g['region'], 'Status': 'Available',
             'BusinessStatus': 'Normal', 'InstanceChargeType': 'PostPaid', 'CreationTime': CREATED, 'ExpiredTime': '',
             'Description': '', 'OwnerId': int(self.emu.OWNER_ID), 'ResourceGroupId': '',
             'Tags': self.emu.tag_list(g['tags'], vpc_style=True)} for g in page]}
        return body

    def gateway_of_vpc(self, vpc_id):
        for gateway in self.state.ipv6_gateways.values():
            if gateway['vpc'] == vpc_id:
                return gateway
        return None

    def addresses(self, region):
        """Every IPv6 address of the region's ENIs as (id, address, eni), in ENI order."""
        out = []
        for eni in region.enis:
            for address in eni.ipv6_ips:
                out.append(('ipv6-%s%s' % (self.emu.region_prefix(region.id), self.emu._stable_hex('ipv6', address)), address, eni))
        return out

    def address_json(self, aid, address, eni):
        extra = self.state.ipv6.get(address) or {}
        band = extra.get('band')
        gateway = self.gateway_of_vpc(eni.vswitch.vpc)
        item = {'Ipv6AddressId': aid, 'Ipv6Address': address, 'Ipv6AddressName': '', 'Ipv6AddressDescription': '',
                'VSwitchId': eni.vswitch.id, 'VpcId': eni.vswitch.vpc, 'Ipv6GatewayId': gateway['id'] if gateway else '',
                'AssociatedInstanceId': eni.instance.id if eni.instance else eni.id,
                'AssociatedInstanceType': 'EcsInstance' if eni.instance else 'NetworkInterface',
                'Status': 'Available', 'NetworkType': 'Public' if band else 'Private', 'Ipv6Isp': 'BGP',
                'AllocationTime': CREATED, 'RealBandwidth': band['bandwidth'] if band else 0, 'ResourceGroupId': '',
                'ServiceManaged': 0, 'Tags': self.emu.tag_list(extra.get('tags') or {}, vpc_style=True)}
        if band:
            item['Ipv6InternetBandwidth'] = {'Ipv6InternetBandwidthId': band['id'], 'Bandwidth': band['bandwidth'],
                                             'InternetChargeType': band['charge'], 'InstanceChargeType': 'PostPaid',
                                             'BusinessStatus': 'Normal', 'HasReservationData': False}
        return item

    def describe_ipv6_addresses(self, params):
        region = self.api.region(params)
        tags = self.vpc_tags(params)
        ids = params.get('Ipv6AddressId')
        if ids and len(ids.split(',')) > 20:
            raise self.emu.bad_param('Ipv6AddressId', ids, 'at most 20 ids separated by commas')
        wanted = self.emu.norm_ip(params.get('Ipv6Address')) if params.get('Ipv6Address') else None
        band_id = params.get('Ipv6InternetBandwidthId')
        rows = []
        for aid, address, eni in self.addresses(region):
            extra = self.state.ipv6.get(address) or {}
            owner = eni.instance.id if eni.instance else eni.id
            if ((ids is None or aid in ids.split(',')) and (wanted is None or address == wanted)
                    and (params.get('VSwitchId') is None or eni.vswitch.id == params.get('VSwitchId'))
                    and (params.get('VpcId') is None or eni.vswitch.vpc == params.get('VpcId'))
                    and (params.get('AssociatedInstanceId') is None or owner == params.get('AssociatedInstanceId'))
                    and (band_id is None or (extra.get('band') or {}).get('id') == band_id)
                    and self.emu.tags_match(extra.get('tags') or {}, tags)):
                rows.append((aid, address, eni))
        body, page = self.page(params, rows, 50)
        body['Ipv6Addresses'] = {'Ipv6Address': [self.address_json(*row) for row in page]}
        return body

    def address_by_id(self, region, aid):
        for row in self.addresses(region):
            if row[0] == aid:
                return row
        raise self.error(404, 'InvalidIpv6AddressId.NotFound', 'The specified IPv6 address %s does not exist.' % aid)

    def bandwidth_value(self, params, charge):
        low, high = IPV6_RANGES[charge]
        value = params.require('Bandwidth')
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise self.error(400, 'InvalidParameter', 'Bandwidth %s is not valid: %d to %d Mbit/s for %s.' % (value, low, high, charge))
        return number

    def allocate_ipv6_internet_bandwidth(self, params):
        region = self.api.region(params)
        gid = params.require('Ipv6GatewayId')
        gateway = self.state.ipv6_gateways.get(gid)
        if gateway is None or gateway['region'] != region.id:
            raise self.error(404, 'InvalidIpv6GatewayId.NotFound', 'The specified IPv6 gateway %s does not exist.' % gid)
        aid, address, eni = self.address_by_id(region, params.require('Ipv6AddressId'))
        if eni.vswitch.vpc != gateway['vpc']:
            raise self.error(400, 'InvalidParameter', 'The IPv6 address %s is not in the VPC %s of IPv6 gateway %s.' % (address, gateway['vpc'], gid))
        charge = params.get('InternetChargeType', 'PayByBandwidth')
        if charge not in IPV6_RANGES:
            raise self.emu.bad_param('InternetChargeType', charge, 'PayByBandwidth or PayByTraffic')
        bandwidth = self.bandwidth_value(params, charge)
        extra = self.state.ipv6.setdefault(address, {'band': None, 'tags': {}})
        if extra['band']:
            raise self.error(400, 'OperationFailed.Ipv6InternetBandwidthExist',
                             'The IPv6 address %s already has Internet bandwidth %s.' % (address, extra['band']['id']))
        extra['band'] = {'id': self.world.new_id('ipv6bw', region.id), 'bandwidth': bandwidth, 'charge': charge}
        self.api.mutated()
        return {'InternetBandwidthId': extra['band']['id'], 'Ipv6AddressId': aid}

    def band_target(self, region, params):
        band_id = params.get('Ipv6InternetBandwidthId')
        aid = params.get('Ipv6AddressId')
        if band_id is None and aid is None:
            raise self.emu.missing('Ipv6InternetBandwidthId')
        for row_id, address, _eni in self.addresses(region):
            extra = self.state.ipv6.get(address) or {}
            band = extra.get('band')
            if band and (band['id'] == band_id or (band_id is None and row_id == aid)):
                return extra
        raise self.error(404, 'InvalidIpv6InternetBandwidthId.NotFound',
                         'The specified IPv6 Internet bandwidth %s does not exist.' % (band_id or aid))

    def modify_ipv6_internet_bandwidth(self, params):
        region = self.api.region(params)
        extra = self.band_target(region, params)
        extra['band']['bandwidth'] = self.bandwidth_value(params, extra['band']['charge'])
        self.api.mutated()
        return {}

    def delete_ipv6_internet_bandwidth(self, params):
        region = self.api.region(params)
        extra = self.band_target(region, params)
        extra['band'] = None
        self.api.mutated()
        return {}

    # -- tags ----------------------------------------------------------------------------------

    def tag_targets(self, params):
        region = self.api.region(params)
        kind = params.require('ResourceType').upper()
        if kind not in TAGGABLE:
            raise self.emu.bad_param('ResourceType', params.get('ResourceType'), ', '.join(sorted(TAGGABLE)))
        ids = params.listed('ResourceId', 50)
        if not ids:
            raise self.emu.missing('ResourceId.1')
        targets = []
        if kind == 'IPV6ADDRESS':
            by_id = dict((aid, address) for aid, address, _eni in self.addresses(region))
            for rid in ids:
                if rid not in by_id:
                    raise self.error(404, 'InvalidResourceId.NotFound', 'The specified resource %s does not exist.' % rid)
                targets.append(self.state.ipv6.setdefault(by_id[rid], {'band': None, 'tags': {}}))
        else:
            store = getattr(self.state, TAGGABLE[kind])
            for rid in ids:
                if rid not in store or store[rid]['region'] != region.id:
                    raise self.error(404, 'InvalidResourceId.NotFound', 'The specified resource %s does not exist.' % rid)
                targets.append(store[rid])
        return targets

    def tag_resources(self, params):
        tags = params.tags()
        if not tags:
            raise self.emu.missing('Tag.1.Key')
        for target in self.tag_targets(params):
            target['tags'].update((k, v or '') for k, v in tags)
        self.api.mutated()
        return {}

    def untag_resources(self, params):
        keys = params.listed('TagKey', 20)
        remove_all = params.boolean('All')
        for target in self.tag_targets(params):
            for key in list(target['tags']):
                if remove_all or key in keys:
                    del target['tags'][key]
        self.api.mutated()
        return {}
