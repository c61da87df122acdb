"""Unit tests for the pure verification logic (probe plan, output parsing, matrix, report)."""
import json
import re
import shutil
import subprocess

import pytest

from ansible_collections.underlay.alicloud.plugins.module_utils import verify as v

NS = 'underlay-verify'

# --- real command outputs -----------------------------------------------------------------------
BUSYBOX_OK = """PING 172.31.199.193 (172.31.199.193): 56 data bytes
64 bytes from 172.31.199.193: seq=0 ttl=64 time=0.419 ms
64 bytes from 172.31.199.193: seq=1 ttl=64 time=0.262 ms

--- 172.31.199.193 ping statistics ---
2 packets transmitted, 2 packets received, 0% packet loss
round-trip min/avg/max = 0.262/0.340/0.419 ms"""
BUSYBOX_LOSS = """PING 172.31.199.200 (172.31.199.200): 56 data bytes

--- 172.31.199.200 ping statistics ---
3 packets transmitted, 0 packets received, 100% packet loss"""
BUSYBOX_PARTIAL = """PING 10.0.0.2 (10.0.0.2): 56 data bytes
64 bytes from 10.0.0.2: seq=1 ttl=64 time=1.500 ms

--- 10.0.0.2 ping statistics ---
2 packets transmitted, 1 packets received, 50% packet loss
round-trip min/avg/max = 1.500/1.500/1.500 ms"""
IPUTILS_OK = """PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.
64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.045 ms
64 bytes from 10.0.0.2: icmp_seq=2 ttl=64 time=0.052 ms

--- 10.0.0.2 ping statistics ---
2 packets transmitted, 2 received, 0% packet loss, time 1001ms
rtt min/avg/max/mdev = 0.045/0.048/0.052/0.003 ms"""
IPUTILS_UNREACHABLE = """PING 10.0.0.9 (10.0.0.9) 56(84) bytes of data.
From 10.0.0.1 icmp_seq=1 Destination Host Unreachable
From 10.0.0.1 icmp_seq=2 Destination Host Unreachable

--- 10.0.0.9 ping statistics ---
2 packets transmitted, 0 received, +2 errors, 100% packet loss, time 1010ms"""
IPUTILS_V6_OK = """PING fd00::12(fd00::12) 56 data bytes
64 bytes from fd00::12: icmp_seq=1 ttl=64 time=0.071 ms

--- fd00::12 ping statistics ---
1 packets transmitted, 1 received, 0% packet loss, time 0ms
rtt min/avg/max/mdev = 0.071/0.071/0.071/0.000 ms"""


@pytest.mark.parametrize('output, rc, status, reason', [
    (BUSYBOX_OK, 0, 'ok', '0.3 ms'),
    (BUSYBOX_LOSS, 1, 'fail', '100% packet loss (3 sent)'),
    (BUSYBOX_PARTIAL, 0, 'ok', '1.5 ms, 1/2 lost'),
    (IPUTILS_OK, 0, 'ok', '0.0 ms'),
    (IPUTILS_UNREACHABLE, 1, 'fail', 'destination host unreachable'),
    (IPUTILS_V6_OK, 0, 'ok', '0.1 ms'),
    ('ping: connect: Network is unreachable', 2, 'fail', 'network is unreachable'),
    ("ping: bad address 'nowhere'", 1, 'fail', 'name resolution failed'),
    ('ping: permission denied (are you root?)', 1, 'fail', 'not permitted (missing NET_RAW?)'),
    ('sh: ping: not found', 127, 'fail', 'command not found in the image'),
    ('', 143, 'fail', 'timed out'),
    ('garbage', 3, 'fail', 'no ping summary in output (rc=3)'),
])
def test_parse_ping(output, rc, status, reason):
    result = v.parse_ping(output, rc)
    assert (result['status'], result['reason']) == (status, reason)


def test_parse_ping_numbers():
    assert v.parse_ping(IPUTILS_OK, 0)['rtt_ms'] == pytest.approx(0.048)
    result = v.parse_ping(BUSYBOX_PARTIAL, 0)
    assert (result['sent'], result['received']) == (2, 1)


@pytest.mark.parametrize('output, rc, status, reason, code', [
    ('http_code=200 time_total=0.003412', 0, 'ok', 'HTTP 200 in 3 ms', 200),
    ('http_code=503 time_total=0.010000', 0, 'fail', 'HTTP 503', 503),
    ('curl: (28) Connection timed out after 5001 milliseconds\nhttp_code=000 time_total=5.001234', 28, 'fail', 'timed out', None),
    ('curl: (7) Failed to connect to 10.233.0.10 port 80: Connection refused\nhttp_code=000 time_total=0.001', 7, 'fail',
     'connection refused', None),
    ('curl: (7) Failed to connect to 10.233.0.10 port 80 after 1 ms: Could not connect to server\nhttp_code=000 time_total=0.001', 7,
     'fail', 'Failed to connect to 10.233.0.10 port 80 after 1 ms: Could not connect to server', None),
    ('curl: (6) Could not resolve host: www.example.invalid\nhttp_code=000 time_total=0.0', 6, 'fail', 'name resolution failed', None),
    ('  HTTP/1.0 200 OK\n  Content-Type: text/html\n  Date: Thu, 26 Nov 2026 07:00:00 GMT', 0, 'ok', 'HTTP 200', 200),
    ('  HTTP/1.1 302 Found\n  Location: /x\n  HTTP/1.1 200 OK', 0, 'ok', 'HTTP 200', 200),
    ('  HTTP/1.1 404 Not Found\nwget: server returned error: HTTP/1.1 404 Not Found', 1, 'fail', 'HTTP 404', 404),
    ('wget: download timed out', 1, 'fail', 'timed out', None),
    ("wget: can't connect to remote host (10.233.0.10): Connection refused", 1, 'fail', 'connection refused', None),
    ("wget: bad address 'www.example.invalid'", 1, 'fail', 'name resolution failed', None),
    ('', 1, 'fail', 'no HTTP response (rc=1)', None),
    ('', 0, 'ok', 'HTTP transfer ok (wget exit 0)', None),
])
def test_parse_http(output, rc, status, reason, code):
    result = v.parse_http(output, rc)
    assert (result['status'], result['reason'], result['http_code']) == (status, reason, code)


def test_parse_markers_frames_and_unterminated():
    out = ('noise\n::uv:: begin node:10.0.0.1\nline1\nline2\n\n::uv:: end node:10.0.0.1 rc=0\n'
           '::uv:: begin pod:10.0.0.2\npartial output\n')
    parsed = v.parse_markers(out)
    assert parsed == {'node:10.0.0.1': {'output': 'line1\nline2', 'rc': 0}, 'pod:10.0.0.2': {'output': 'partial output', 'rc': None}}
    assert not v.parse_markers('')
    assert not v.parse_markers(None)


# --- objects ------------------------------------------------------------------------------------

def pool(name, node, nic, ips, subnet, allocated=None, exclude=None, version=None):
    spec = {'subnet': subnet, 'ips': ips, 'nodeName': [node], 'multusName': ['kube-system/ipvlan-%s' % nic], 'default': True}
    if exclude:
        spec['excludeIPs'] = exclude
    if version:
        spec['ipVersion'] = version
    obj = {'metadata': {'name': name}, 'spec': spec}
    if allocated is not None:
        obj['status'] = {'allocatedIPs': json.dumps(allocated)}
    return obj


def pod(name, node, nic, ips, phase='Running'):
    return {'metadata': {'name': name, 'namespace': NS, 'labels': {'underlay.alicloud/nic': nic},
                         'annotations': {'v1.multus-cni.io/default-network': 'kube-system/ipvlan-%s' % nic}},
            'spec': {'nodeName': node},
            'status': {'phase': phase, 'podIPs': [{'ip': ip} for ip in ips],
                       'conditions': [{'type': 'Ready', 'status': 'True'}]}}


def node(name, *ips):
    addresses = [{'type': 'Hostname', 'address': name}] + [{'type': 'InternalIP', 'address': ip} for ip in ips]
    return {'metadata': {'name': name}, 'status': {'addresses': addresses}}


def svc(name, nic, ip, port=80):
    spec = {'clusterIP': ip, 'clusterIPs': [ip], 'ports': [{'port': port}]}
    return {'metadata': {'name': name, 'labels': {'underlay.alicloud/nic': nic}}, 'spec': spec}


POOLS = [
    pool('master-eth0-v4', 'master', 'eth0', ['172.31.199.185-172.31.199.189'], '172.31.192.0/20',
         {'172.31.199.185': {'pod': NS + '/uv-eth0-a'}}),
    pool('worker-eth0-v4', 'worker', 'eth0', ['172.31.199.190-172.31.199.194'], '172.31.192.0/20'),
    pool('master-eth1-v4', 'master', 'eth1', ['192.168.0.156-192.168.0.160'], '192.168.0.0/24'),
    pool('worker-eth1-v4', 'worker', 'eth1', ['192.168.0.161-192.168.0.165'], '192.168.0.0/24', exclude=['192.168.0.165']),
]
NODES = [node('master', '172.31.199.183'), node('worker', '172.31.199.184')]
PODS = [pod('uv-eth0-a', 'master', 'eth0', ['172.31.199.185']), pod('uv-eth0-b', 'worker', 'eth0', ['172.31.199.190']),
        pod('uv-eth1-a', 'master', 'eth1', ['192.168.0.156']), pod('uv-eth1-b', 'worker', 'eth1', ['192.168.0.161'])]
SVCS = [svc('uv-eth0', 'eth0', '10.233.0.10'), svc('uv-eth1', 'eth1', '10.233.0.11')]


def test_ip_ranges_and_pool_contains():
    p = POOLS[3]
    assert v.pool_contains(p, '192.168.0.161')
    assert not v.pool_contains(p, '192.168.0.165')   # excluded
    assert not v.pool_contains(p, '192.168.0.166')
    assert not v.pool_contains(p, 'fd00::1')
    with pytest.raises(v.VerifyError, match="invalid IP range '10.0.0.9-10.0.0.1'"):
        v.ip_ranges(['10.0.0.9-10.0.0.1'])
    with pytest.raises(v.VerifyError, match="invalid IP address 'nope'"):
        v.ip_ranges(['nope'])


def test_pools_for_matches_node_and_network_and_normalises_names():
    pools = POOLS + [{'metadata': {'name': 'short-name'}, 'spec': {'subnet': '172.31.192.0/20', 'ips': ['172.31.199.195'],
                                                                   'nodeName': ['master'], 'multusName': ['ipvlan-eth0']}},
                     {'metadata': {'name': 'disabled'}, 'spec': {'subnet': '172.31.192.0/20', 'disable': True}}]
    names = [p['metadata']['name'] for p in v.pools_for(pools, 'master', 'kube-system/ipvlan-eth0', 4)]
    assert names == ['master-eth0-v4', 'short-name']
    assert not v.pools_for(pools, 'master', 'kube-system/ipvlan-eth0', 6)


def test_nics_from_pools():
    assert v.nics_from_pools(POOLS) == ['eth0', 'eth1']
    assert v.nics_from_pools([{'spec': {'multusName': ['kube-system/macvlan-x', 'ipvlan-']}}]) == []


def norm(p):
    return v.normalise_pod(p)


def test_pool_check_ok_outside_and_missing_pool():
    ok = v.check_pod_pool(norm(PODS[0]), POOLS)
    assert ok[0]['status'] == 'ok' and ok[0]['pool'] == 'master-eth0-v4' and ok[0]['reason'] == 'in pool master-eth0-v4'
    noted = v.check_pod_pool(norm(PODS[1]), POOLS)[0]
    assert noted['status'] == 'ok' and 'no allocation record' in noted['reason']
    # IP from the other node's pool: names both pools
    wrong = v.check_pod_pool(norm(pod('x', 'master', 'eth0', ['172.31.199.191'])), POOLS)[0]
    assert wrong['status'] == 'fail'
    assert wrong['reason'] == ('172.31.199.191 is outside pool master-eth0-v4 for node master and network kube-system/ipvlan-eth0; '
                               'it belongs to pool worker-eth0-v4')
    stray = v.check_pod_pool(norm(pod('x', 'worker', 'eth1', ['192.168.0.165'])), POOLS)[0]
    assert stray['status'] == 'fail' and stray['reason'].endswith('it is in no pool')
    none = v.check_pod_pool(norm(pod('x', 'other', 'eth0', ['172.31.199.185'])), POOLS)[0]
    assert none['reason'] == 'no SpiderIPPool for node other and network kube-system/ipvlan-eth0 (IPv4)'


def test_pool_check_allocation_owned_by_another_pod():
    result = v.check_pod_pool(norm(pod('uv-eth0-z', 'master', 'eth0', ['172.31.199.185'])), POOLS)[0]
    assert result['status'] == 'fail'
    assert result['reason'] == '172.31.199.185 is in pool master-eth0-v4 but allocated to %s/uv-eth0-a there, not %s/uv-eth0-z' % (NS, NS)


def test_node_addresses_families():
    assert v.node_addresses([node('n', '10.0.0.1', 'fd00::1', 'bogus')]) == {'n': {4: '10.0.0.1', 6: 'fd00::1'}}


def test_plan_one_script_per_pod_and_probes_per_target():
    plan = v.build_plan(PODS, NODES, SVCS, {'egress_url': 'http://www.example.com/'})
    assert [s['name'] for s in plan['sources']] == ['uv-eth0-a', 'uv-eth0-b', 'uv-eth1-a', 'uv-eth1-b']
    first = plan['sources'][0]
    ids = [p['id'] for p in first['probes']]
    assert ids == ['node:172.31.199.183', 'pod:172.31.199.190', 'pod:192.168.0.156', 'pod:192.168.0.161',
                   'svc:uv-eth0:10.233.0.10', 'svc:uv-eth1:10.233.0.11', 'egress']
    assert first['probes'][0]['command'] == 'ping -c 2 -w 4 -W 2 172.31.199.183'
    assert first['probes'][4]['command'] == 'timeout 5 wget -q -S -O /dev/null http://10.233.0.10:80/'
    assert [c['key'] for c in plan['columns']] == ['node', 'pod/uv-eth0-a', 'pod/uv-eth0-b', 'pod/uv-eth1-a', 'pod/uv-eth1-b',
                                                   'svc/uv-eth0', 'svc/uv-eth1', 'egress']
    # every probe is launched once in the script and framed once
    script = first['script']
    assert script.count('\np ') == len(ids) and script.count('\ne ') == len(ids)


def test_plan_netshoot_uses_curl_and_ipv6():
    pods = [pod('a', 'n1', 'eth0', ['10.0.0.2', 'fd00::2']), pod('b', 'n2', 'eth0', ['10.0.0.3', 'fd00::3']),
            pod('c', 'n2', 'eth1', ['10.1.0.3'])]
    nodes = [node('n1', '10.0.0.1', 'fd00::1'), node('n2', '10.0.0.11')]
    svcs = [{'metadata': {'name': 's'}, 'spec': {'clusterIPs': ['10.96.0.5', 'fd96::5'], 'ports': [{'port': 8080}]}}]
    plan = v.build_plan(pods, nodes, svcs, {'flavor': 'netshoot', 'count': 1, 'timeout': 1})
    a = plan['sources'][0]
    assert [(p['id'], p['check']) for p in a['probes']] == [
        ('node:10.0.0.1', 'node'), ('node:fd00::1', 'ipv6'), ('pod:10.0.0.3', 'pod'), ('pod:fd00::3', 'ipv6'),
        ('pod:10.1.0.3', 'pod'), ('svc:s:10.96.0.5', 'service'), ('svc:s:fd96::5', 'service')]
    assert a['probes'][1]['command'] == 'ping -6 -c 1 -w 2 -W 1 fd00::1'
    assert a['probes'][6]['command'] == "curl -sS -o /dev/null -m 5 -w 'http_code=%{http_code} time_total=%{time_total}\\n' 'http://[fd96::5]:8080/'"
    # a v4-only pod gets no IPv6 probes
    c = plan['sources'][2]
    assert all(p['family'] == 4 for p in c['probes'])
    no6 = v.build_plan(pods, nodes, svcs, {'ipv6': False})
    assert all(p['check'] != 'ipv6' for s in no6['sources'] for p in s['probes'])


def test_plan_rejects_unknown_flavor():
    with pytest.raises(v.VerifyError, match="unknown image flavor 'alpine': expected one of busybox, netshoot"):
        v.build_plan(PODS, NODES, [], {'flavor': 'alpine'})


@pytest.mark.skipif(not shutil.which('sh'), reason='no POSIX shell')
def test_script_runs_in_a_real_shell(tmp_path):
    """Run the generated script with stand-in ping/wget binaries: markers frame every probe's output and rc."""
    (tmp_path / 'ping').write_text('#!/bin/sh\nfor a; do t=$a; done\ncase $t in *.190) echo "%s"; exit 0;; esac\n'
                                   'echo "%s"; exit 1\n' % (BUSYBOX_OK, BUSYBOX_LOSS))
    (tmp_path / 'wget').write_text('#!/bin/sh\necho "  HTTP/1.0 200 OK" >&2\n')
    for f in ('ping', 'wget'):
        (tmp_path / f).chmod(0o755)
    plan = v.build_plan(PODS, NODES, SVCS)
    src = plan['sources'][0]
    out = subprocess.run(['sh', '-c', src['script']], capture_output=True, text=True, check=True, timeout=30,
                         env={'PATH': '%s:/usr/bin:/bin' % tmp_path}).stdout
    parsed = v.parse_markers(out)
    assert set(parsed) == {p['id'] for p in src['probes']}
    assert parsed['pod:172.31.199.190']['rc'] == 0 and parsed['pod:192.168.0.156']['rc'] == 1
    assert 'HTTP/1.0 200 OK' in parsed['svc:uv-eth0:10.233.0.10']['output']


# --- matrix and report --------------------------------------------------------------------------

def answer(src, broken=(), missing=()):
    """Script output for a source: every probe succeeds except targets in `broken`; `missing` ids print nothing."""
    out = []
    for probe in src['probes']:
        if probe['id'] in missing:
            continue
        if probe['protocol'] == 'ping':
            body, rc = (BUSYBOX_LOSS, 1) if probe['address'] in broken else (BUSYBOX_OK, 0)
        else:
            body, rc = ('wget: download timed out', 1) if probe['address'] in broken else ('  HTTP/1.0 200 OK', 0)
        out += ['::uv:: begin ' + probe['id'], body, '::uv:: end %s rc=%d' % (probe['id'], rc)]
    return '\n'.join(out)


def test_report_green():
    plan = v.build_plan(PODS, NODES, SVCS)
    results = [{'item': {'name': s['name']}, 'stdout': answer(s), 'rc': 0} for s in plan['sources']]
    report = v.build_report(plan, results, POOLS, options={'generated': '2026-11-26T07:00:00Z'})
    assert report['result'] == 'pass' and not report['failures']
    assert report['exec_calls'] == 4 and report['probes'] == 4 * (1 + 3 + 2)
    assert report['checks']['pod'] == {'title': v.CHECK_TITLES['pod'], 'required': True, 'total': 12, 'ok': 12, 'failed': 0}
    assert report['checks']['pool']['ok'] == 4
    json.dumps(report)  # serialisable
    lines = v.summary_lines(report)
    assert lines[0] == 'Underlay connectivity: PASS (4 exec calls, 24 probes)'


def test_report_one_broken_pair_marks_exactly_that_cell():
    plan = v.build_plan(PODS, NODES, SVCS)
    results = {s['name']: {'stdout': answer(s, broken=('192.168.0.161',) if s['name'] == 'uv-eth0-a' else ()), 'rc': 0}
               for s in plan['sources']}
    report = v.build_report(plan, results, POOLS)
    assert report['result'] == 'fail' and report['failed_checks'] == ['pod']
    failed_cells = [(row['pod'], key) for row in report['rows'] for key, cell in row['cells'].items() if cell['status'] == 'fail']
    assert failed_cells == [('uv-eth0-a', 'pod/uv-eth1-b')]
    failure = report['failures'][0]
    assert failure['command'] == 'ping -c 2 -w 4 -W 2 192.168.0.161' and '100% packet loss' in failure['output']
    assert 'FAIL pod: uv-eth0-a -> pod/uv-eth1-b (192.168.0.161): 100% packet loss (3 sent)' in v.summary_lines(report)
    md = v.render_markdown(report)
    assert '$ ping -c 2 -w 4 -W 2 192.168.0.161' in md and md.count('**FAIL**') == 1
    page = v.render_html(report)
    assert page.count('<td class="fail">') == 1 and '$ ping -c 2 -w 4 -W 2 192.168.0.161' in page


def test_report_optional_check_failure_does_not_fail_run():
    plan = v.build_plan(PODS, NODES, SVCS, {'egress_url': 'http://www.example.com/'})
    results = {s['name']: {'stdout': answer(s, broken=('',)), 'rc': 0} for s in plan['sources']}
    report = v.build_report(plan, results, POOLS, options={'required': ['pool', 'node', 'pod', 'service']})
    assert report['result'] == 'pass' and report['checks']['egress']['failed'] == 4
    assert report['checks']['egress']['required'] is False
    with pytest.raises(v.VerifyError, match='unknown check.s. dns in required'):
        v.build_report(plan, results, POOLS, options={'required': ['dns']})


def test_report_exec_failure_missing_marker_and_pool_failure():
    pods = PODS[:3] + [pod('uv-eth1-b', 'worker', 'eth1', ['192.168.0.100'])]
    plan = v.build_plan(pods, NODES, SVCS)
    results = {'uv-eth0-a': {'failed': True, 'msg': 'pod not running'},
               'uv-eth0-b': {'stdout': answer(plan['sources'][1], missing=('node:172.31.199.184',))}}
    report = v.build_report(plan, results, POOLS)
    rows = {r['pod']: r for r in report['rows']}
    assert all(c['status'] == 'fail' and c['results'][0]['reason'] == 'exec failed: pod not running' for c in rows['uv-eth0-a']['cells'].values())
    assert rows['uv-eth0-b']['cells']['node']['results'][0]['reason'] == 'no result for this probe in the exec output'
    assert rows['uv-eth1-a']['cells']['node']['results'][0]['reason'] == 'the source pod was not probed'
    assert rows['uv-eth1-b']['pool'][0]['status'] == 'fail'
    assert set(report['failed_checks']) == {'pool', 'node', 'pod', 'service'}


def test_report_pod_without_ip_and_loadbalancers():
    pods = [pod('uv-eth0-a', 'master', 'eth0', [], phase='Pending')]
    plan = v.build_plan(pods, NODES, [])
    lbs = [{'name': 'uv-l4', 'url': 'http://47.98.137.75:999/', 'status': 'fail', 'reason': 'timed out after 10 attempts'},
           {'name': 'uv-l7', 'url': 'http://121.41.165.119/', 'status': 'ok', 'reason': 'HTTP 200'}]
    report = v.build_report(plan, {}, POOLS, lbs)
    assert report['rows'][0]['pool'][0]['reason'] == 'pod has no IP (phase Pending)'
    assert report['checks']['loadbalancer'] == {'title': v.CHECK_TITLES['loadbalancer'], 'required': True, 'total': 2, 'ok': 1, 'failed': 1}
    assert report['exec_calls'] == 0
    page = v.render_html(report)
    assert 'LoadBalancer Services' in page and 'http://47.98.137.75:999/' in page
    assert '| uv-l4 | http://47.98.137.75:999/ | **FAIL** timed out after 10 attempts |' in v.render_markdown(report)


def test_html_is_self_contained_and_escaped():
    plan = v.build_plan(PODS, NODES, SVCS)
    results = {s['name']: {'stdout': answer(s, broken=('172.31.199.183',)).replace('data bytes', '<script>x</script>')}
               for s in plan['sources']}
    page = v.render_html(v.build_report(plan, results, POOLS))
    assert '<script>' not in page and '&lt;script&gt;' in page
    assert not re.search(r'(src|href)=', page)
    assert page.count('<td class="self">') == 4


def test_report_egress_cells_carry_the_cloud_diagnosis():
    plan = v.build_plan(PODS, NODES, SVCS, {'egress_url': 'http://www.example.com/'})
    results = {s['name']: {'stdout': answer(s, broken=('',) if 'eth1' in s['name'] else ()), 'rc': 0} for s in plan['sources']}
    entry = {'id': 'snat-1', 'name': 'underlay-vsw-a', 'source_vswitch_id': 'vsw-a', 'source_cidr': None, 'snat_ips': ['47.0.0.1'],
             'status': 'Available', 'managed': True}
    cloud = {'vpc_id': 'vpc-lab', 'vswitches': [{'id': 'vsw-a', 'cidr': '172.31.192.0/20'}, {'id': 'vsw-b', 'cidr': '192.168.0.0/24'}],
             'nat_gateways': [{'id': 'ngw-1', 'status': 'Available', 'snat_entries': [entry]}], 'ipv6_addresses': []}
    report = v.build_report(plan, results, POOLS, options={'egress_cloud': cloud})
    egress = {row['pod']: row['cells']['egress']['results'][0] for row in report['rows']}
    assert egress['uv-eth0-a']['diagnosis']['complete'] and egress['uv-eth0-a']['diagnosis']['ipv4'][0]['snat_entry'] == 'snat-1'
    line = 'IPv4 192.168.0.161: no SNAT entry covers vsw-b (192.168.0.0/24) on NAT gateway(s) ngw-1'
    assert egress['uv-eth1-b']['status'] == 'fail' and egress['uv-eth1-b']['diagnosis']['summary'] == line
    assert '     cloud: ' + line in v.summary_lines(report)
    assert 'Cloud side: ' + line in v.render_markdown(report) and 'cloud: ' + line in v.render_html(report)
    # Unreadable cloud: said once per cell instead of a diagnosis; no cloud at all: no diagnosis key.
    unread = v.build_report(plan, results, POOLS, options={'egress_cloud': {'error': 'InvalidAccessKeyId.NotFound'}})
    assert unread['rows'][0]['cells']['egress']['results'][0]['diagnosis']['summary'] == 'cloud side not read: InvalidAccessKeyId.NotFound'
    assert 'diagnosis' not in v.build_report(plan, results, POOLS)['rows'][0]['cells']['egress']['results'][0]
