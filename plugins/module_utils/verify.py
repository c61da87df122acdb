# -*- coding: utf-8 -*-
# Copyright: underlay.alicloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure logic of the underlay connectivity proof (no I/O).

Pipeline: Kubernetes objects (test pods, nodes, SpiderIPPools, Services) -> probe plan (one shell
script per source pod, each probe framed by markers) -> exec outputs -> parsed probe results ->
connectivity matrix -> JSON / Markdown / self-contained HTML report.
"""

from __future__ import annotations

import html
import ipaddress
import json
import re
import shlex

from ansible_collections.underlay.alicloud.plugins.module_utils.egress import diagnose_egress

MARKER = '::uv::'
CHECKS = ('pool', 'node', 'pod', 'ipv6', 'service', 'egress', 'loadbalancer')
CHECK_TITLES = {
    'pool': 'pod IP inside its node x NIC pool',
    'node': 'pod -> own node',
    'pod': 'pod -> pod (IPv4)',
    'ipv6': 'pod -> pod / node (IPv6)',
    'service': 'pod -> ClusterIP Service',
    'egress': 'pod -> external URL (egress)',
    'loadbalancer': 'controller -> LoadBalancer address',
}
# The ping command line is the same for busybox and iputils; only the HTTP client differs.
CURL_FORMAT = 'http_code=%{http_code} time_total=%{time_total}\\n'
FLAVORS = {
    # The timeout applet, not wget -T: Debian 12's busybox 1.35 wget dies with SIGSEGV on -T.
    'busybox': ['timeout', '{timeout}', 'wget', '-q', '-S', '-O', '/dev/null', '{url}'],
    'netshoot': ['curl', '-sS', '-o', '/dev/null', '-m', '{timeout}', '-w', CURL_FORMAT, '{url}'],
}
TIMEOUT_RCS = (124, 137, 143)
OK, FAIL, SKIP = 'ok', 'fail', 'skip'


class VerifyError(ValueError):
    """Bad input to the verification logic."""


# ---------------------------------------------------------------------------------------------
# addresses and pools

def _ip(value):
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise VerifyError('invalid IP address %r' % (value,)) from None


def ip_ranges(entries):
    """SpiderIPPool `ips`/`excludeIPs` entries ('a' or 'a-b') -> list of (first, last) addresses."""
    ranges = []
    for entry in entries or []:
        first, _sep, last = str(entry).partition('-')
        lo, hi = _ip(first), _ip(last) if last else _ip(first)
        if lo.version != hi.version or hi < lo:
            raise VerifyError('invalid IP range %r: expected "a" or "a-b" with a <= b' % (entry,))
        ranges.append((lo, hi))
    return ranges


def pool_contains(pool, address):
    """True when the address is in the pool's ips and not in its excludeIPs."""
    ip = _ip(address)
    spec = pool.get('spec') or {}

    def inside(ranges):
        return any(lo.version == ip.version and lo <= ip <= hi for lo, hi in ranges)
    return inside(ip_ranges(spec.get('ips'))) and not inside(ip_ranges(spec.get('excludeIPs')))


def _pool_version(pool):
    spec = pool.get('spec') or {}
    if spec.get('ipVersion') in (4, 6):
        return spec['ipVersion']
    try:
        return ipaddress.ip_network(spec.get('subnet', ''), strict=False).version
    except ValueError:
        return None


def _normalise_multus(name, spiderpool_namespace):
    # An entry without a namespace means the Spiderpool namespace (Spiderpool's own rule).
    return name if '/' in name else '%s/%s' % (spiderpool_namespace, name)


def pools_for(pools, node, network, version, spiderpool_namespace='kube-system'):
    """Pools a pod on `node` attached to `network` (ns/name) may draw a `version` address from."""
    found = []
    for pool in pools:
        spec = pool.get('spec') or {}
        if spec.get('disable') or _pool_version(pool) != version:
            continue
        nodes = spec.get('nodeName') or []
        multus = [_normalise_multus(m, spiderpool_namespace) for m in spec.get('multusName') or []]
        if nodes and node not in nodes:
            continue
        if multus and network not in multus:
            continue
        found.append(pool)
    # Pools that name the node and the network explicitly are the node x NIC pools; prefer them.
    found.sort(key=lambda p: (not (p['spec'].get('nodeName') and p['spec'].get('multusName')), p['metadata']['name']))
    return found


def _allocated(pool):
    raw = (pool.get('status') or {}).get('allocatedIPs')
    if not raw:
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return {}


def check_pod_pool(pod, pools, spiderpool_namespace='kube-system'):
    """Check every address of a normalised pod against its node x NIC pool(s); one result per address."""
    results = []
    for address in pod['ips']:
        version = _ip(address).version
        candidates = pools_for(pools, pod['node'], pod['network'], version, spiderpool_namespace)
        result = {'check': 'pool', 'source': pod['name'], 'address': address, 'family': version, 'pool': None}
        holder = [p['metadata']['name'] for p in pools if _pool_version(p) == version and pool_contains(p, address)]
        matching = [p for p in candidates if pool_contains(p, address)]
        if not candidates:
            result.update(status=FAIL, reason='no SpiderIPPool for node %s and network %s (IPv%d)' % (pod['node'], pod['network'], version))
        elif not matching:
            names = ', '.join(p['metadata']['name'] for p in candidates)
            where = ('it belongs to pool %s' % ', '.join(holder)) if holder else 'it is in no pool'
            result.update(status=FAIL, reason='%s is outside pool %s for node %s and network %s; %s' % (
                address, names, pod['node'], pod['network'], where))
        else:
            pool = matching[0]
            result['pool'] = pool['metadata']['name']
            owner = (_allocated(pool).get(address) or {}).get('pod')
            expected = '%s/%s' % (pod['namespace'], pod['name'])
            if owner and owner != expected:
                result.update(status=FAIL, reason='%s is in pool %s but allocated to %s there, not %s' % (address, result['pool'], owner, expected))
            else:
                note = '' if owner else ' (no allocation record in pool status)'
                result.update(status=OK, reason='in pool %s%s' % (result['pool'], note))
        results.append(result)
    return results


# ---------------------------------------------------------------------------------------------
# normalising Kubernetes objects

def normalise_pod(pod, nic_label='underlay.alicloud/nic', network_annotation='v1.multus-cni.io/default-network'):
    meta = pod.get('metadata') or {}
    status = pod.get('status') or {}
    ips = [entry['ip'] for entry in status.get('podIPs') or [] if entry.get('ip')]
    if not ips and status.get('podIP'):
        ips = [status['podIP']]
    ready = any(c.get('type') == 'Ready' and c.get('status') == 'True' for c in status.get('conditions') or [])
    return {
        'name': meta.get('name'),
        'namespace': meta.get('namespace'),
        'node': (pod.get('spec') or {}).get('nodeName'),
        'nic': (meta.get('labels') or {}).get(nic_label),
        'network': (meta.get('annotations') or {}).get(network_annotation, ''),
        'phase': status.get('phase'),
        'ready': ready,
        'ips': ips,
    }


def node_addresses(nodes):
    """Node name -> {4: InternalIP, 6: InternalIP} from Node objects."""
    result = {}
    for node in nodes:
        by_family = {}
        for addr in (node.get('status') or {}).get('addresses') or []:
            if addr.get('type') != 'InternalIP':
                continue
            try:
                version = ipaddress.ip_address(addr.get('address', '')).version
            except ValueError:
                continue
            by_family.setdefault(version, addr['address'])
        result[node['metadata']['name']] = by_family
    return result


def nics_from_pools(pools, prefix='ipvlan-'):
    """Interface names whose networks the pools serve (multusName `ns/<prefix><iface>`), sorted."""
    nics = set()
    for pool in pools:
        for name in (pool.get('spec') or {}).get('multusName') or []:
            short = name.rsplit('/', 1)[-1]
            if short.startswith(prefix) and len(short) > len(prefix):
                nics.add(short[len(prefix):])
    return sorted(nics)


# ---------------------------------------------------------------------------------------------
# probe plan

def _url(address, port, path='/'):
    host = '[%s]' % address if ':' in address else address
    return 'http://%s:%s%s' % (host, port, path)


def _ping(address, count, timeout):
    argv = ['ping']
    if _ip(address).version == 6:
        argv.append('-6')
    return argv + ['-c', str(count), '-w', str(timeout + count), '-W', str(timeout), address]


def _http(flavor, url, timeout):
    return [part.replace('{timeout}', str(timeout)).replace('{url}', url) for part in FLAVORS[flavor]]


def _probe(check, column, probe_id, address, argv, protocol):
    return {'id': probe_id, 'check': check, 'column': column, 'address': address, 'protocol': protocol,
            'family': _ip(address).version if address else None, 'argv': argv, 'command': ' '.join(shlex.quote(a) for a in argv)}


def build_plan(pods, nodes, services=None, options=None):
    """Plan one probe script per source pod.

    pods: Pod objects of the test workloads; nodes: Node objects; services: ClusterIP Service
    objects of the test workloads (label carries the NIC); options: flavor, count, timeout,
    http_port, egress_url, ipv6.
    Probe ids are derived from target addresses and names known before the run, so the markers in
    the output can be matched back even when pod names are random.
    """
    opts = {'flavor': 'busybox', 'count': 2, 'timeout': 2, 'http_timeout': 5, 'egress_url': '', 'ipv6': True,
            'nic_label': 'underlay.alicloud/nic'}
    opts.update({k: v for k, v in (options or {}).items() if v is not None})
    if opts['flavor'] not in FLAVORS:
        raise VerifyError('unknown image flavor %r: expected one of %s' % (opts['flavor'], ', '.join(sorted(FLAVORS))))
    count, timeout, http_timeout = int(opts['count']), int(opts['timeout']), int(opts['http_timeout'])
    pods = sorted((normalise_pod(p, opts['nic_label']) for p in pods), key=lambda p: (p['nic'] or '', p['node'] or '', p['name']))
    node_ips = node_addresses(nodes)
    svcs = []
    for svc in sorted(services or [], key=lambda s: s['metadata']['name']):
        spec = svc.get('spec') or {}
        ips = [ip for ip in spec.get('clusterIPs') or [spec.get('clusterIP')] if ip and ip != 'None']
        port = (spec.get('ports') or [{}])[0].get('port', 80)
        svcs.append({'name': svc['metadata']['name'], 'ips': ips, 'port': port})

    columns = [{'key': 'node', 'label': 'own node', 'kind': 'node'}]
    columns += [{'key': 'pod/' + p['name'], 'label': p['name'], 'kind': 'pod', 'node': p['node'], 'nic': p['nic']} for p in pods]
    columns += [{'key': 'svc/' + s['name'], 'label': 'svc ' + s['name'], 'kind': 'service'} for s in svcs]
    if opts['egress_url']:
        columns.append({'key': 'egress', 'label': 'egress', 'kind': 'egress', 'url': opts['egress_url']})

    sources = []
    for src in pods:
        probes = []
        families = {_ip(a).version for a in src['ips']}
        for version, address in sorted(node_ips.get(src['node'], {}).items()):
            if version in families and (version == 4 or opts['ipv6']):
                probes.append(_probe('node' if version == 4 else 'ipv6', 'node', 'node:%s' % address, address,
                                     _ping(address, count, timeout), 'ping'))
        for dst in pods:
            if dst['name'] == src['name']:
                continue
            for address in dst['ips']:
                version = _ip(address).version
                if version not in families or (version == 6 and not opts['ipv6']):
                    continue
                probes.append(_probe('pod' if version == 4 else 'ipv6', 'pod/' + dst['name'], 'pod:%s' % address, address,
                                     _ping(address, count, timeout), 'ping'))
        for svc in svcs:
            for address in svc['ips']:
                if _ip(address).version in families:
                    probes.append(_probe('service', 'svc/' + svc['name'], 'svc:%s:%s' % (svc['name'], address), address,
                                         _http(opts['flavor'], _url(address, svc['port']), http_timeout), 'http'))
        if opts['egress_url']:
            probes.append(_probe('egress', 'egress', 'egress', '', _http(opts['flavor'], opts['egress_url'], http_timeout), 'http'))
        sources.append(dict(src, probes=probes, script=render_script(probes)))
    return {'flavor': opts['flavor'], 'columns': columns, 'sources': sources, 'services': svcs}


def render_script(probes):
    """POSIX sh (busybox ash compatible): run all probes in parallel, then print framed results."""
    lines = [
        'd=$(mktemp -d 2>/dev/null || echo /tmp/uv.$$); mkdir -p "$d"',
        'p() { n=$1; shift; "$@" >"$d/$n.out" 2>&1; echo $? >"$d/$n.rc"; }',
        'e() { echo "%s begin $2"; cat "$d/$1.out"; echo; echo "%s end $2 rc=$(cat "$d/$1.rc")"; }' % (MARKER, MARKER),
    ]
    lines += ['p %d %s &' % (n, probe['command']) for n, probe in enumerate(probes)]
    lines.append('wait')
    lines += ['e %d %s' % (n, shlex.quote(probe['id'])) for n, probe in enumerate(probes)]
    lines.append('rm -rf "$d"')
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------------------------------------
# parsing command output

_BEGIN = re.compile(r'^%s begin (\S+)\s*$' % re.escape(MARKER))
_END = re.compile(r'^%s end (\S+) rc=(-?\d*)\s*$' % re.escape(MARKER))


def parse_markers(stdout):
    """Script output -> {probe id: {'output': str, 'rc': int|None}}; an unterminated block keeps rc None."""
    results, current, buf = {}, None, []
    for line in (stdout or '').splitlines():
        begin, end = _BEGIN.match(line), _END.match(line)
        if begin:
            if current is not None:
                results[current] = {'output': '\n'.join(buf).strip(), 'rc': None}
            current, buf = begin.group(1), []
        elif end and end.group(1) == current:
            results[current] = {'output': '\n'.join(buf).strip(), 'rc': int(end.group(2)) if end.group(2) else None}
            current, buf = None, []
        elif current is not None:
            buf.append(line)
    if current is not None:
        results[current] = {'output': '\n'.join(buf).strip(), 'rc': None}
    return results


_PING_SUMMARY = re.compile(r'(\d+) packets transmitted, (\d+) (?:packets )?received')
_PING_RTT = re.compile(r'(?:round-trip|rtt) min/avg/max(?:/mdev)? = [\d.]+/([\d.]+)/')
_ERRORS = (
    (re.compile(r'bad address|unknown host|Name or service not known|could not resolve|bad port', re.I), 'name resolution failed'),
    (re.compile(r'Network is unreachable', re.I), 'network is unreachable'),
    (re.compile(r'No route to host|Host is unreachable', re.I), 'no route to host'),
    (re.compile(r'Destination Host Unreachable', re.I), 'destination host unreachable'),
    (re.compile(r'Connection refused', re.I), 'connection refused'),
    (re.compile(r'Operation not permitted|permission denied|socket: Permission|lacking privilege', re.I), 'not permitted (missing NET_RAW?)'),
    (re.compile(r'timed out|Timeout was reached', re.I), 'timed out'),
    (re.compile(r'(?:ping|wget|curl): (?:command )?not found|executable file not found', re.I), 'command not found in the image'),
)


def _error_reason(output, rc, default):
    for pattern, reason in _ERRORS:
        if pattern.search(output or ''):
            return reason
    if rc in TIMEOUT_RCS:
        return 'timed out'
    return default


def parse_ping(output, rc=None):
    """busybox or iputils ping output -> {'status', 'reason', 'rtt_ms', 'loss'}."""
    summary = _PING_SUMMARY.search(output or '')
    if summary:
        sent, received = int(summary.group(1)), int(summary.group(2))
        rtt = _PING_RTT.search(output)
        result = {'sent': sent, 'received': received, 'rtt_ms': float(rtt.group(1)) if rtt else None}
        if received > 0:
            loss = '' if received >= sent else ', %d/%d lost' % (sent - received, sent)
            result.update(status=OK, reason=('%.1f ms' % result['rtt_ms'] if rtt else 'reply') + loss)
        else:
            unreachable = 'Unreachable' in output
            result.update(status=FAIL, reason='destination host unreachable' if unreachable else '100%% packet loss (%d sent)' % sent)
        return result
    return {'status': FAIL, 'reason': _error_reason(output, rc, 'no ping summary in output (rc=%s)' % rc), 'rtt_ms': None}


_CURL_W = re.compile(r'http_code=(\d{3}) time_total=([\d.]+)')
_CURL_ERR = re.compile(r'curl: \((\d+)\) ([^\n]*)')
_HTTP_STATUS = re.compile(r'HTTP/[\d.]+ (\d{3})')
_WGET_ERR = re.compile(r'wget: ([^\n]*)')


def parse_http(output, rc=None):
    """curl -w (netshoot) or busybox `wget -S` output -> {'status', 'reason', 'http_code', 'time_ms'}."""
    output = output or ''
    curl = _CURL_W.search(output)
    code, time_ms = None, None
    if curl:
        code, time_ms = int(curl.group(1)) or None, round(float(curl.group(2)) * 1000, 1)
    else:
        codes = _HTTP_STATUS.findall(output)
        code = int(codes[-1]) if codes else None
    result = {'http_code': code, 'time_ms': time_ms}
    if code and 200 <= code < 400 and rc in (0, None):
        result.update(status=OK, reason='HTTP %d' % code + (' in %.0f ms' % time_ms if time_ms is not None else ''))
    elif code:
        result.update(status=FAIL, reason='HTTP %d' % code)
    elif rc == 0 and not curl:
        # wget exits 0 only after a successful transfer, even when no header was printed.
        result.update(status=OK, reason='HTTP transfer ok (wget exit 0)')
    else:
        err = _CURL_ERR.search(output) or _WGET_ERR.search(output)
        detail = err.group(err.lastindex) if err else ''
        result.update(status=FAIL, reason=_error_reason(detail or output, rc, detail or 'no HTTP response (rc=%s)' % rc))
    return result


def parse_probe(probe, raw):
    if raw is None:
        return {'status': FAIL, 'reason': 'no result for this probe in the exec output'}
    parser = parse_ping if probe['protocol'] == 'ping' else parse_http
    return parser(raw['output'], raw['rc'])


# ---------------------------------------------------------------------------------------------
# LoadBalancer Services, probed from the controller

def loadbalancer_targets(services, names):
    """Service objects + the expected names -> [{'name', 'url', 'reason'}]; url '' when there is no address."""
    by_name = {s['metadata']['name']: s for s in services}
    targets = []
    for name in names:
        svc = by_name.get(name)
        ingress = ((((svc or {}).get('status') or {}).get('loadBalancer') or {}).get('ingress') or [{}])[0]
        address = ingress.get('ip') or ingress.get('hostname')
        if not svc:
            targets.append({'name': name, 'url': '', 'reason': 'Service not found'})
        elif not address:
            targets.append({'name': name, 'url': '', 'reason': 'no external address assigned (is the CCM running?)'})
        else:
            port = ((svc.get('spec') or {}).get('ports') or [{}])[0].get('port', 80)
            targets.append({'name': name, 'url': _url(address, port), 'reason': ''})
    return targets


def loadbalancer_results(targets, probes):
    """Targets + registered uri loop results -> LoadBalancer results for build_report."""
    by_name = {(p.get('item') or {}).get('name'): p for p in probes or []}
    results = []
    for target in targets:
        probe = by_name.get(target['name']) if target['url'] else None
        entry = {'name': target['name'], 'url': target['url'], 'address': target['url'], 'family': None}
        if probe is None:
            entry.update(status=FAIL, reason=target['reason'] or 'not probed')
        else:
            code, attempts = int(probe.get('status') or -1), probe.get('attempts', 1)
            if 200 <= code < 400:
                entry.update(status=OK, reason='HTTP %d after %s attempt(s)' % (code, attempts))
            else:
                detail = 'HTTP %d' % code if code > 0 else _error_reason(probe.get('msg', ''), None, probe.get('msg') or 'no response')
                entry.update(status=FAIL, reason='%s after %s attempt(s)' % (detail, attempts), output=probe.get('msg', ''))
            entry['command'] = 'GET %s (from the controller)' % target['url']
        results.append(entry)
    return results


# ---------------------------------------------------------------------------------------------
# matrix and report

def _exec_outcome(exec_result):
    """verify_exec (`error`) or k8s_exec (`failed`/`msg`) result -> (stdout, error or None)."""
    if not exec_result:
        return '', 'the source pod was not probed'
    if exec_result.get('error') or exec_result.get('failed'):
        return '', 'exec failed: %s' % (exec_result.get('error') or exec_result.get('msg') or 'unknown error')
    return exec_result.get('stdout') or '', None


def egress_diagnosis(addresses, cloud):
    """The cloud side of a pod's egress (egress.diagnose_egress), or why it could not be read."""
    if cloud.get('error'):
        return {'ipv4': [], 'ipv6': [], 'complete': None, 'error': cloud['error'], 'summary': 'cloud side not read: %s' % cloud['error']}
    return diagnose_egress(addresses, cloud)


def build_report(plan, exec_results, pools, loadbalancers=None, options=None):
    """Combine the plan, the exec results (a list of results carrying `pod` or a loop `item`, or a dict keyed by pod name),
    the pools and the controller-side LoadBalancer results into the report dict.

    With ``egress_cloud`` in the options (VPC vSwitches, NAT gateways with SNAT entries, IPv6 addresses, or an
    ``error``), every egress result carries the ``diagnosis`` of its source pod's addresses."""
    opts = {'required': ['pool', 'node', 'pod', 'ipv6', 'service', 'egress', 'loadbalancer'],
            'spiderpool_namespace': 'kube-system', 'generated': '', 'title': 'Underlay connectivity', 'egress_cloud': None}
    opts.update({k: v for k, v in (options or {}).items() if v is not None})
    unknown = sorted(set(opts['required']) - set(CHECKS))
    if unknown:
        raise VerifyError('unknown check(s) %s in required: expected any of %s' % (', '.join(unknown), ', '.join(CHECKS)))
    if isinstance(exec_results, dict):
        by_pod = exec_results
    else:
        # A registered loop over plan sources: each result carries its loop item.
        by_pod = {item.get('pod') or (item.get('item') or {}).get('name'): item for item in exec_results or []}

    results, rows = [], []
    for src in plan['sources']:
        pool_results = check_pod_pool(src, pools, opts['spiderpool_namespace'])
        if not src['ips']:
            pool_results = [{'check': 'pool', 'source': src['name'], 'address': None, 'family': None, 'pool': None,
                             'status': FAIL, 'reason': 'pod has no IP (phase %s)' % src.get('phase')}]
        for r in pool_results:
            r.update(target='pool', command='', output='')
        results.extend(pool_results)
        stdout, exec_error = _exec_outcome(by_pod.get(src['name']))
        raw = parse_markers(stdout)
        cells = {}
        for probe in src['probes']:
            outcome = ({'status': FAIL, 'reason': exec_error} if exec_error else parse_probe(probe, raw.get(probe['id'])))
            got = raw.get(probe['id']) or {}
            result = dict(outcome, check=probe['check'], source=src['name'], target=probe['column'], address=probe['address'],
                          family=probe['family'], command=probe['command'], output=got.get('output', ''), rc=got.get('rc'), id=probe['id'])
            if probe['check'] == 'egress' and opts['egress_cloud']:
                result['diagnosis'] = egress_diagnosis(src['ips'], opts['egress_cloud'])
            results.append(result)
            cells.setdefault(probe['column'], []).append(result)
        rows.append({'pod': src['name'], 'node': src['node'], 'nic': src['nic'], 'ips': src['ips'], 'phase': src.get('phase'),
                     'pool': pool_results, 'exec_error': exec_error,
                     'cells': {k: {'status': _worst(v), 'results': v} for k, v in cells.items()}})

    for lb in loadbalancers or []:
        results.append(dict(lb, check='loadbalancer', source='controller', target=lb.get('name'), command=lb.get('command', ''),
                            output=lb.get('output', '')))

    checks = {}
    for check in CHECKS:
        mine = [r for r in results if r['check'] == check]
        checks[check] = {'title': CHECK_TITLES[check], 'required': check in opts['required'], 'total': len(mine),
                         'ok': sum(r['status'] == OK for r in mine), 'failed': sum(r['status'] == FAIL for r in mine)}
    failed_required = [c for c, v in checks.items() if v['required'] and v['failed']]
    return {
        'title': opts['title'], 'generated': opts['generated'], 'flavor': plan.get('flavor'),
        'result': 'fail' if failed_required else 'pass', 'failed_checks': failed_required,
        'checks': checks, 'columns': plan['columns'], 'rows': rows,
        'loadbalancers': [r for r in results if r['check'] == 'loadbalancer'],
        'failures': [r for r in results if r['status'] == FAIL],
        'exec_calls': sum(1 for s in plan['sources'] if s['probes']),
        'probes': sum(len(s['probes']) for s in plan['sources']),
    }


def _worst(results):
    return FAIL if any(r['status'] == FAIL for r in results) else OK


def summary_lines(report):
    """Short lines for the play output."""
    lines = ['%s: %s (%d exec calls, %d probes)' % (report['title'], report['result'].upper(), report['exec_calls'], report['probes'])]
    for check, info in report['checks'].items():
        if not info['total']:
            continue
        lines.append('%-12s %3d/%-3d ok  %s%s' % (check, info['ok'], info['total'], info['title'], '' if info['required'] else ' (not required)'))
    for failure in report['failures'][:20]:
        address = ' (%s)' % failure['address'] if failure.get('address') else ''
        lines.append('FAIL %s: %s -> %s%s: %s' % (failure['check'], failure['source'], failure['target'], address, failure['reason']))
        if failure.get('diagnosis'):
            lines.append('     cloud: %s' % failure['diagnosis']['summary'])
    if len(report['failures']) > 20:
        lines.append('... %d more failures in the report' % (len(report['failures']) - 20))
    return lines


def _cell_text(cell):
    return '; '.join(('IPv%s ' % r['family'] if r.get('family') and r['check'] in ('pod', 'ipv6', 'node') else '') + r['reason']
                     + (' (cloud: %s)' % r['diagnosis']['summary'] if r.get('diagnosis') else '')
                     for r in cell['results'])


def render_markdown(report):
    icon = {OK: 'OK', FAIL: '**FAIL**'}
    out = ['# %s: %s' % (report['title'], report['result'].upper()), '']
    if report['generated']:
        out += ['Generated %s; image flavor `%s`; %d exec calls for %d probes.' % (
            report['generated'], report['flavor'], report['exec_calls'], report['probes']), '']
    out += ['| check | required | ok | failed |', '|---|---|---|---|']
    for check, info in report['checks'].items():
        if info['total']:
            out.append('| %s | %s | %d | %d |' % (info['title'], 'yes' if info['required'] else 'no', info['ok'], info['failed']))
    out += ['', '## Matrix (rows: source pods, columns: destinations)', '']
    cols = report['columns']
    out.append('| source | node | NIC | IP in pool | ' + ' | '.join(c['label'] for c in cols) + ' |')
    out.append('|' + '---|' * (4 + len(cols)))
    for row in report['rows']:
        pool = '; '.join('%s %s' % (icon[p['status']], p['pool'] or p['reason']) for p in row['pool'])
        cells = []
        for col in cols:
            cell = row['cells'].get(col['key'])
            cells.append('-' if not cell else '%s %s' % (icon[cell['status']], _cell_text(cell)))
        out.append('| %s | %s | %s | %s | %s |' % (row['pod'], row['node'], row['nic'], pool, ' | '.join(cells)))
    if report['loadbalancers']:
        out += ['', '## LoadBalancer (from the controller)', '', '| service | URL | result |', '|---|---|---|']
        for lb in report['loadbalancers']:
            out.append('| %s | %s | %s %s |' % (lb['target'], lb.get('url', ''), icon[lb['status']], lb['reason']))
    if report['failures']:
        out += ['', '## Failures', '']
        for f in report['failures']:
            out += ['### %s: %s -> %s %s' % (f['check'], f['source'], f['target'], f.get('address') or ''), '', f['reason'], '']
            if f.get('diagnosis'):
                out += ['Cloud side: %s' % f['diagnosis']['summary'], '']
            if f.get('command'):
                out += ['```', '$ ' + f['command'], f.get('output') or '(no output)', '```', '']
    return '\n'.join(out).rstrip() + '\n'


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:16px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:18px 0 6px}
.meta{color:#57606a;font-size:12px;margin-bottom:10px}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.pass{background:#1a7f37}.fail{background:#cf222e}
table{border-collapse:collapse;font-size:12px}th,td{border:1px solid #d0d7de;padding:4px 6px;vertical-align:top}
th{background:#f6f8fa;text-align:left}th.col{max-width:130px;overflow-wrap:break-word}
td.ok{background:#dafbe1}td.fail{background:#ffebe9;outline:2px solid #cf222e;outline-offset:-2px}
td.warn{background:#fff8c5;outline:2px solid #bf8700;outline-offset:-2px}.failed-checks{color:#a40e26;font-weight:600;margin:4px 0 10px}
td.self{background:#eaeef2;color:#8c959f;text-align:center}td.none{color:#8c959f;text-align:center}
td.src{white-space:nowrap;font-weight:600}.sub{font-weight:400;color:#57606a;display:block}
.r{display:block;white-space:nowrap}.diag{display:block;color:#57606a;max-width:340px}.fail .r.bad{color:#a40e26;font-weight:600}
pre{background:#1f2328;color:#f0f6fc;padding:4px 6px;margin:3px 0 0;font-size:11px;white-space:pre-wrap;max-width:340px;border-radius:4px}
.legend span{display:inline-block;padding:1px 8px;margin-right:6px;border:1px solid #d0d7de}
.checks td:nth-child(n+3){text-align:right}.checks td.nfail{background:#cf222e;color:#fff;font-weight:600}
.checks td.nwarn{background:#bf8700;color:#fff;font-weight:600}
"""


def _h(value):
    return html.escape('' if value is None else str(value))


def _html_results(results, cls_fail=True):
    parts = []
    for r in results:
        fam = 'IPv%s ' % r['family'] if r.get('family') and r['check'] in ('pod', 'ipv6', 'node') else ''
        mark = '&#10004;' if r['status'] == OK else '&#10008;'
        bad = ' bad' if r['status'] == FAIL else ''
        parts.append('<span class="r%s" title="%s">%s %s%s</span>' % (bad, _h(r.get('command')), mark, fam, _h(r['reason'])))
        if r.get('diagnosis'):
            parts.append('<span class="diag">cloud: %s</span>' % _h(r['diagnosis']['summary']))
        if r['status'] == FAIL and cls_fail and r.get('command'):
            parts.append('<pre>$ %s\n%s</pre>' % (_h(r['command']), _h(r.get('output') or '(no output)')))
    return ''.join(parts)


def _css_class(results, report):
    """ok; fail when a required check failed; warn when only checks that are not required failed."""
    failed = [r for r in results if r['status'] == FAIL]
    if not failed:
        return OK
    return FAIL if any(report['checks'][r['check']]['required'] for r in failed) else 'warn'


def render_html(report):
    """A single self-contained page (inline CSS, no scripts, no external resources)."""
    cols = report['columns']
    out = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>%s</title><style>%s</style></head><body>' % (
        _h(report['title']), _CSS)]
    out.append('<h1>%s <span class="badge %s">%s</span></h1>' % (_h(report['title']), report['result'], report['result'].upper()))
    generated = ('generated %s &middot; ' % _h(report['generated'])) if report['generated'] else ''
    out.append('<div class="meta">%simage flavor %s &middot; %d exec calls (one per source pod) &middot; %d probes</div>' % (
        generated, _h(report['flavor']), report['exec_calls'], report['probes']))
    if report['failed_checks']:
        out.append('<div class="failed-checks">Failed required checks: %s &mdash; the red cells below show the failing command and its output'
                   '</div>' % _h(', '.join(report['checks'][c]['title'] for c in report['failed_checks'])))
    out.append('<table class="checks"><tr><th>check</th><th>required</th><th>ok</th><th>failed</th></tr>')
    for info in report['checks'].values():
        if info['total']:
            out.append('<tr><td>%s</td><td>%s</td><td>%d</td><td class="n%s">%d</td></tr>' % (
                _h(info['title']), 'yes' if info['required'] else 'no', info['ok'],
                (FAIL if info['required'] else 'warn') if info['failed'] else OK, info['failed']))
    out.append('</table>')
    out.append('<h2>Connectivity matrix &mdash; rows: source pods, columns: destinations</h2>')
    out.append('<div class="legend"><span style="background:#dafbe1">reachable</span><span style="background:#ffebe9">failed '
               '(command and output shown)</span><span style="background:#fff8c5">failed, check not required</span>'
               '<span style="background:#eaeef2">same pod</span></div><br>')
    out.append('<table><tr><th>source pod</th><th>IP in node&times;NIC pool</th>')
    for col in cols:
        sub = ('%s / %s' % (col.get('node'), col.get('nic'))) if col['kind'] == 'pod' else col.get('url', col['kind'])
        out.append('<th class="col">%s<span class="sub">%s</span></th>' % (_h(col['label']).replace('-', '-<wbr>'), _h(sub)))
    out.append('</tr>')
    for row in report['rows']:
        out.append('<tr><td class="src">%s<span class="sub">%s / %s &middot; %s</span></td>' % (
            _h(row['pod']), _h(row['node']), _h(row['nic']), _h(', '.join(row['ips']) or 'no IP')))
        out.append('<td class="%s">%s</td>' % (_css_class(row['pool'], report), _html_results(
            [dict(p, reason=p['pool'] if p['status'] == OK else p['reason']) for p in row['pool']], cls_fail=False)))
        for col in cols:
            cell = row['cells'].get(col['key'])
            if col['key'] == 'pod/' + row['pod']:
                out.append('<td class="self">&mdash;</td>')
            elif not cell:
                out.append('<td class="none">n/a</td>')
            else:
                out.append('<td class="%s">%s</td>' % (_css_class(cell['results'], report), _html_results(cell['results'])))
        out.append('</tr>')
    out.append('</table>')
    if report['loadbalancers']:
        out.append('<h2>LoadBalancer Services (probed from the controller)</h2><table><tr><th>service</th><th>URL</th><th>result</th></tr>')
        for lb in report['loadbalancers']:
            out.append('<tr><td>%s</td><td>%s</td><td class="%s">%s</td></tr>' % (
                _h(lb['target']), _h(lb.get('url')), _css_class([lb], report), _html_results([lb])))
        out.append('</table>')
    return ''.join(out) + '</body></html>\n'
