"""Kubernetes API double: a small kube-apiserver stand-in over plain HTTP for tests.

CLI: python3 tests/emulator/kube_emulator.py --listen 127.0.0.1:0 --kubeconfig FILE
     [--simulate-kubelet] [--nodes n1,n2] [--crds DIR] [--exec-table FILE] [--latency MS]
     [--spiderpool-webhooks] [--token TOKEN]
Library: KubeEmulator(...).start(); .url; .write_kubeconfig(path); .stop()
See docs/kube-emulator.md.
"""
import argparse
import collections
import json
import os
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kube_exec  # noqa: E402  pylint: disable=wrong-import-position
import kube_proto  # noqa: E402  pylint: disable=wrong-import-position
import kube_store  # noqa: E402  pylint: disable=wrong-import-position
import kube_table  # noqa: E402  pylint: disable=wrong-import-position
from kube_store import ApiError  # noqa: E402  pylint: disable=wrong-import-position

try:
    import yaml
except ImportError:
    yaml = None

VERSION_INFO = {'major': '1', 'minor': '33', 'gitVersion': 'v1.33.0', 'gitCommit': 'kube-emulator',
                'gitTreeState': 'clean', 'buildDate': '2025-01-01T00:00:00Z', 'goVersion': 'go1.24.0',
                'compiler': 'gc', 'platform': 'linux/amd64'}
DEFAULT_TOKEN = 'kube-emulator-token'
# Empty protobuf message: a valid, empty OpenAPI v2 document (client-go then skips schema validation).
OPENAPI_V2_PB = b''


class Server(ThreadingHTTPServer):
    """Threaded server with a listen backlog for clients that open many connections at once."""

    daemon_threads = True
    request_queue_size = 128


class Stats:
    """Request counters by verb and resource, plus every exec."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.counts = collections.Counter()
            self.dry_run = collections.Counter()
            self.execs = []
            self.total = 0

    def count(self, verb, resource, dry_run=False):
        with self.lock:
            self.counts['%s %s' % (verb, resource)] += 1
            if dry_run:
                self.dry_run['%s %s' % (verb, resource)] += 1
            self.total += 1

    def record_exec(self, entry):
        with self.lock:
            self.execs.append(entry)

    def snapshot(self):
        with self.lock:
            return {'total': self.total, 'requests': dict(sorted(self.counts.items())),
                    'dry_run_requests': dict(sorted(self.dry_run.items())),
                    'exec_count': len(self.execs), 'execs': list(self.execs)}


class KubeEmulator:
    """The double: store + HTTP server + optional controller simulation and webhook emulation."""

    def __init__(self, host='127.0.0.1', port=0, token=DEFAULT_TOKEN, latency_ms=0, simulate_kubelet=False,
                 nodes=(), exec_rules=None, spiderpool_webhooks=False, pod_ip_allocator=None,
                 spiderpool_ipam=False):
        self.store = kube_store.Store()
        self.stats = Stats()
        self.exec_table = kube_exec.ExecTable(exec_rules)
        self.logs = {}  # (namespace, pod) -> text served by pods/log
        self.token = token
        self.latency = latency_ms / 1000.0
        self.kubelet = None
        if spiderpool_webhooks or spiderpool_ipam:
            import kube_spiderpool  # pylint: disable=import-outside-toplevel
            if spiderpool_webhooks:
                kube_spiderpool.install_webhooks(self.store)
            if spiderpool_ipam and pod_ip_allocator is None:
                pod_ip_allocator = kube_spiderpool.PoolAllocator(self.store)
        if simulate_kubelet:
            import kube_kubelet  # pylint: disable=import-outside-toplevel
            self.kubelet = kube_kubelet.Kubelet(self.store, pod_ip_allocator)
            self.kubelet.install()
        for node in nodes:
            self.add_node(node)
        self.server = Server((host, port), _make_handler(self))
        self.thread = None

    # ---- lifecycle ------------------------------------------------------------------------------
    @property
    def url(self):
        host, port = self.server.server_address[:2]
        return 'http://%s:%d' % (host, port)

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def serve_forever(self):
        self.server.serve_forever()

    def kubeconfig(self):
        return {'apiVersion': 'v1', 'kind': 'Config', 'preferences': {},
                'clusters': [{'name': 'kube-emulator', 'cluster': {'server': self.url}}],
                'users': [{'name': 'kube-emulator', 'user': {'token': self.token or DEFAULT_TOKEN}}],
                'contexts': [{'name': 'kube-emulator', 'context': {'cluster': 'kube-emulator', 'user': 'kube-emulator',
                                                                   'namespace': 'default'}}],
                'current-context': 'kube-emulator'}

    def write_kubeconfig(self, path):
        with open(path, 'w', encoding='utf-8') as handle:
            json.dump(self.kubeconfig(), handle, indent=2)
        os.chmod(path, 0o600)
        return path

    # ---- library helpers --------------------------------------------------------------------
    def resource(self, api_version, kind):
        return self.store.by_kind(api_version, kind)

    def apply_object(self, obj):
        """Create or replace an object directly (test set-up), bypassing HTTP."""
        res = self.store.by_kind(obj['apiVersion'], obj['kind'])
        ns = obj['metadata'].get('namespace', 'default') if res.namespaced else None
        try:
            current = self.store.get(res, ns, obj['metadata']['name'])
        except ApiError:
            result = self.store.create(res, ns, obj)
        else:
            merged = dict(obj)
            merged['metadata'] = dict(obj['metadata'], resourceVersion=current['metadata']['resourceVersion'])
            result = self.store.update(res, ns, obj['metadata']['name'], merged)
        if 'status' in obj and res.status:
            meta = {k: v for k, v in result['metadata'].items() if k != 'resourceVersion'}
            result = self.store.update(res, ns, obj['metadata']['name'],
                                       dict(result, status=obj['status'], metadata=meta), subresource='status')
        return result

    def load_crds(self, directory):
        """Register every CustomResourceDefinition found in YAML files under a directory."""
        for name in sorted(os.listdir(directory)):
            if name.endswith(('.yaml', '.yml', '.json')):
                with open(os.path.join(directory, name), encoding='utf-8') as handle:
                    for doc in (yaml.safe_load_all(handle) if yaml else [json.load(handle)]):
                        if doc and doc.get('kind') == 'CustomResourceDefinition':
                            self.apply_object(doc)

    def add_node(self, name, labels=None, internal_ip=None, taints=None):
        index = len(self.store.objects_of('Node')) + 1
        labels = dict({'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64'},
                      **(labels or {}))
        node = {'apiVersion': 'v1', 'kind': 'Node', 'metadata': {'name': name, 'labels': labels},
                'spec': {'taints': taints} if taints else {},
                'status': {'conditions': [{'type': 'Ready', 'status': 'True', 'reason': 'KubeletReady',
                                           'message': 'kubelet is posting ready status'}],
                           'addresses': [{'type': 'InternalIP', 'address': internal_ip or '10.0.0.%d' % (10 + index)},
                                         {'type': 'Hostname', 'address': name}],
                           'nodeInfo': {'kubeletVersion': VERSION_INFO['gitVersion'], 'architecture': 'amd64',
                                        'operatingSystem': 'linux', 'bootID': name, 'machineID': name,
                                        'systemUUID': name, 'containerRuntimeVersion': 'containerd://1.7.0',
                                        'kernelVersion': '6.1.0', 'kubeProxyVersion': VERSION_INFO['gitVersion'],
                                        'osImage': 'Alibaba Cloud Linux 3 (emulated)'}}}
        return self.apply_object(node)

    def set_exec_table(self, rules):
        self.exec_table.set(rules)

    def set_pod_log(self, namespace, name, text):
        self.logs[(namespace, name)] = text

    def set_load_balancer_ip(self, namespace, name, ip):
        res = self.store.find('', 'v1', 'services')
        svc = self.store.get(res, namespace, name)
        svc['status'] = {'loadBalancer': {'ingress': [{'ip': ip}]}}
        return self.store.update(res, namespace, name, svc, subresource='status')

    def objects(self, kind, namespace=None, api_version=None):
        return self.store.objects_of(kind, namespace, api_version)

    def request_counts(self):
        return self.stats.snapshot()


# ---------------------------------------------------------------------------------------------
# HTTP

def _parse_path(path):
    """Split an API path into (group, version, namespace, plural, name, subresource) or None."""
    parts = [p for p in path.split('/') if p]
    if len(parts) >= 2 and parts[0] == 'api':
        group, version, rest = '', parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == 'apis':
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == 'namespaces':
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return None
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    sub = '/'.join(rest[2:]) or None
    return group, version, namespace, plural, name, sub


def _flag(query, key):
    return (query.get(key) or [''])[0].lower() in ('true', '1')


def _make_handler(emu):  # noqa: C901 - the request router
    store = emu.store

    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'
        server_version = 'kube-emulator'
        # Answers go out in two writes (headers, body): with Nagle's algorithm the body would wait for
        # the client's delayed ACK (~40 ms a request). A Go API server sets TCP_NODELAY too.
        disable_nagle_algorithm = True

        def log_message(self, format, *args):  # pylint: disable=redefined-builtin
            """Quiet: the stats endpoint is the request log."""

        def _send(self, code, body, content_type='application/json'):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header('Content-Type', content_type)
            self.send_header('Content-Length', str(len(data)))
            self.send_header('Audit-Id', 'kube-emulator')
            self.end_headers()
            self.wfile.write(data)

        def _error(self, exc):
            self._send(exc.code, exc.status())

        def _body(self):
            length = int(self.headers.get('Content-Length') or 0)
            return self.rfile.read(length) if length else b''

        def _json_body(self, raw):
            ctype = (self.headers.get('Content-Type') or '').split(';')[0]
            if 'protobuf' in ctype:
                try:
                    return kube_proto.decode(raw)
                except kube_proto.ProtoError as exc:
                    raise ApiError(415, 'UnsupportedMediaType', str(exc)) from exc
            if 'cbor' in ctype:
                raise ApiError(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - '
                               'accepted media types include: application/json, application/yaml')
            try:
                text = raw.decode() if raw else ''
            except UnicodeDecodeError as exc:
                raise ApiError(400, 'BadRequest', 'request body is not UTF-8 JSON') from exc
            try:
                if ctype.endswith('yaml') and yaml:
                    return yaml.safe_load(text)
                return json.loads(text) if text else None
            except ValueError as exc:
                raise ApiError(400, 'BadRequest', 'error decoding request body: %s' % exc) from exc

        def _authorized(self):
            # client-go does not send bearer tokens over plain http, so only a wrong token is refused
            given = self.headers.get('Authorization')
            return not emu.token or given is None or given == 'Bearer %s' % emu.token

        def do_GET(self):  # noqa: N802 - http.server naming
            self._dispatch('GET')

        def do_POST(self):  # noqa: N802
            self._dispatch('POST')

        def do_PUT(self):  # noqa: N802
            self._dispatch('PUT')

        def do_PATCH(self):  # noqa: N802
            self._dispatch('PATCH')

        def do_DELETE(self):  # noqa: N802
            self._dispatch('DELETE')

        def _dispatch(self, method):
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            raw = self._body() if method in ('POST', 'PUT', 'PATCH', 'DELETE') else b''
            try:
                if url.path.startswith('/_emulator/'):
                    self._admin(method, url.path, query, raw)
                    return
                if emu.latency:
                    time.sleep(emu.latency)
                if url.path in ('/healthz', '/readyz', '/livez'):
                    self._send(200, b'ok', 'text/plain')
                    return
                if not self._authorized():
                    emu.stats.count('unauthorized', url.path)
                    raise ApiError(401, 'Unauthorized', 'Unauthorized')
                if method == 'GET' and self._discovery(url.path):
                    return
                self._api(method, url.path, query, raw)
            except ApiError as exc:
                self._error(exc)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            except Exception as exc:  # pylint: disable=broad-exception-caught
                # a defect in the double: answer like an apiserver would and leave the trace on stderr
                traceback.print_exc()
                self._error(ApiError(500, 'InternalError', 'kube-emulator internal error: %r' % exc))

        # ---- discovery ----------------------------------------------------------------------
        def _discovery(self, path):
            path = path.rstrip('/') or '/'
            if path == '/version':
                emu.stats.count('get', 'version')
                self._send(200, VERSION_INFO)
            elif path == '/api':
                emu.stats.count('get', 'discovery')
                self._send(200, {'kind': 'APIVersions', 'versions': ['v1'], 'serverAddressByClientCIDRs': [
                    {'clientCIDR': '0.0.0.0/0', 'serverAddress': self.headers.get('Host', '')}]})
            elif path == '/apis':
                emu.stats.count('get', 'discovery')
                groups = []
                for group, versions in sorted(store.groups().items()):
                    if not group:
                        continue
                    entries = [{'groupVersion': '%s/%s' % (group, v), 'version': v} for v in sorted(versions)]
                    groups.append({'name': group, 'versions': entries, 'preferredVersion': entries[-1]})
                self._send(200, {'kind': 'APIGroupList', 'apiVersion': 'v1', 'groups': groups})
            elif path.startswith('/apis/') and path.count('/') == 2:
                group = path.split('/')[2]
                versions = store.groups().get(group)
                if not versions:
                    raise ApiError(404, 'NotFound', 'the server could not find the requested resource')
                entries = [{'groupVersion': '%s/%s' % (group, v), 'version': v} for v in sorted(versions)]
                self._send(200, {'kind': 'APIGroup', 'apiVersion': 'v1', 'name': group, 'versions': entries,
                                 'preferredVersion': entries[-1]})
            elif path == '/api/v1' or (path.startswith('/apis/') and path.count('/') == 3):
                emu.stats.count('get', 'discovery')
                group, version = ('', 'v1') if path == '/api/v1' else tuple(path.split('/')[2:4])
                with store.lock:
                    table = dict(store.resources.get((group, version), {}))
                if not table:
                    raise ApiError(404, 'NotFound', 'the server could not find the requested resource')
                resources = [entry for res in sorted(table.values(), key=lambda r: r.plural)
                             for entry in res.discovery()]
                self._send(200, {'kind': 'APIResourceList', 'apiVersion': 'v1',
                                 'groupVersion': '%s/%s' % (group, version) if group else version,
                                 'resources': resources})
            elif path == '/openapi/v2':
                emu.stats.count('get', 'openapi')
                self._send(200, OPENAPI_V2_PB, 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf')
            elif path == '/openapi/v3':
                emu.stats.count('get', 'openapi')
                self._send(200, {'paths': {}})
            else:
                return False
            return True

        # ---- resources ------------------------------------------------------------------------
        def _api(self, method, path, query, raw):
            parsed = _parse_path(path)
            if parsed is None:
                raise ApiError(404, 'NotFound', 'the server could not find the requested resource')
            group, version, namespace, plural, name, sub = parsed
            if namespace is not None and plural in ('status', 'finalize') and group == '' and \
                    plural not in store.resources.get(('', 'v1'), {}):
                namespace, plural, name, sub = None, 'namespaces', namespace, plural
            res = store.find(group, version, plural)
            if namespace is not None and not res.namespaced:
                raise ApiError(404, 'NotFound', 'the server could not find the requested resource')
            dry_run = 'All' in (query.get('dryRun') or []) or (method == 'DELETE' and self._delete_dry_run(raw))
            manager = (query.get('fieldManager') or [None])[0]
            # like the apiserver, writers without fieldManager are named after their User-Agent
            writer = manager or self.headers.get('User-Agent', 'unknown').split('/')[0] or 'unknown'
            label_sel = (query.get('labelSelector') or [None])[0]
            field_sel = (query.get('fieldSelector') or [None])[0]
            if sub == 'exec' and res.kind == 'Pod':
                self._exec(namespace, name, query)
                return
            if sub == 'log' and res.kind == 'Pod':
                emu.stats.count('get', 'pods/log')
                store.get(res, namespace, name)
                self._send(200, emu.logs.get((namespace, name), '').encode(), 'text/plain')
                return
            if sub not in (None, 'status'):
                raise ApiError(404, 'NotFound', 'the server could not find the requested resource')
            if sub == 'status' and not res.status:
                raise ApiError(404, 'NotFound', 'the server could not find the requested resource')
            label = res.group_resource + ('/' + sub if sub else '')
            if method == 'GET' and name is None:
                if _flag(query, 'watch'):
                    emu.stats.count('watch', label)
                    self._watch(res, namespace, label_sel, field_sel, query)
                    return
                emu.stats.count('list', label)
                self._send_read(res, store.list(res, namespace, label_sel, field_sel))
            elif method == 'GET':
                emu.stats.count('get', label)
                self._send_read(res, store.get(res, namespace, name))
            elif method == 'POST' and name is None:
                emu.stats.count('create', label, dry_run)
                self._send(201, store.create(res, namespace, self._json_body(raw), dry_run, writer))
            elif method == 'PUT' and name is not None:
                emu.stats.count('update', label, dry_run)
                self._send(200, store.update(res, namespace, name, self._json_body(raw), dry_run, sub, writer))
            elif method == 'PATCH' and name is not None:
                ctype = self.headers.get('Content-Type', '')
                emu.stats.count('apply' if ctype.startswith('application/apply-patch') else 'patch', label, dry_run)
                force = _flag(query, 'force')
                existed = self._exists(res, namespace, name)
                is_apply = ctype.startswith('application/apply-patch')
                result = store.patch(res, namespace, name, ctype, raw, dry_run, sub, manager if is_apply else writer, force)
                self._send(200 if existed else 201, result)
            elif method == 'DELETE' and name is not None:
                emu.stats.count('delete', label, dry_run)
                self._send(200, store.delete(res, namespace, name, dry_run))
            elif method == 'DELETE':
                emu.stats.count('deletecollection', label, dry_run)
                self._send(200, store.delete_collection(res, namespace, label_sel, field_sel, dry_run))
            else:
                raise ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested '
                               'resource')

        def _delete_dry_run(self, raw):
            """DeleteOptions may come as a JSON body (protobuf bodies are not inspected)."""
            if not raw or 'json' not in self.headers.get('Content-Type', 'application/json'):
                return False
            try:
                return 'All' in (json.loads(raw).get('dryRun') or [])
            except (ValueError, AttributeError):
                return False

        def _send_read(self, res, payload):
            if 'as=Table' in self.headers.get('Accept', ''):
                self._send(200, kube_table.to_table(res, payload))
            else:
                self._send(200, payload)

        @staticmethod
        def _exists(res, namespace, name):
            try:
                store.get(res, namespace, name)
                return True
            except ApiError:
                return False

        def _watch(self, res, namespace, label_sel, field_sel, query):
            timeout = float((query.get('timeoutSeconds') or ['1800'])[0])
            rv = (query.get('resourceVersion') or [None])[0]
            events = store.watch(res, namespace, label_sel, field_sel, rv, timeout, _flag(query, 'sendInitialEvents'))
            self.send_response(200)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Transfer-Encoding', 'chunked')
            self.end_headers()
            try:
                for etype, obj in events:
                    line = json.dumps({'type': etype, 'object': obj}).encode() + b'\n'
                    self.wfile.write(b'%x\r\n%s\r\n' % (len(line), line))
                    self.wfile.flush()
                self.wfile.write(b'0\r\n\r\n')
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _exec(self, namespace, name, query):
            emu.stats.count('create', 'pods/exec')
            pod = store.get(store.find('', 'v1', 'pods'), namespace, name)
            command = query.get('command') or []
            container = (query.get('container') or [None])[0]
            containers = [c.get('name') for c in pod.get('spec', {}).get('containers') or []]
            if container and container not in containers:
                raise ApiError(400, 'BadRequest', 'container %s is not valid for pod %s' % (container, name))
            if pod.get('status', {}).get('phase') != 'Running':
                raise ApiError(400, 'BadRequest', 'pod %s is not running (phase %s)' % (
                    name, pod.get('status', {}).get('phase')))
            if self.headers.get('Upgrade', '').lower() != 'websocket':
                raise ApiError(400, 'BadRequest', 'Upgrade request required (only the WebSocket exec protocol is '
                               'emulated)')
            proto = kube_exec.choose_protocol(self.headers.get('Sec-WebSocket-Protocol'))
            if proto is None:
                raise ApiError(400, 'BadRequest', 'no supported exec subprotocol offered (want %s)'
                               % ', '.join(kube_exec.PROTOCOLS))
            stdout, stderr, rc = emu.exec_table.answer(pod, container or (containers or [''])[0], command)
            emu.stats.record_exec({'namespace': namespace, 'pod': name, 'container': container, 'command': command,
                                   'rc': rc})
            kube_exec.serve(self, proto, stdout, stderr, rc)

        # ---- admin --------------------------------------------------------------------------------
        def _admin(self, method, path, query, raw):
            if path == '/_emulator/stats' and method == 'GET':
                self._send(200, emu.stats.snapshot())
            elif path == '/_emulator/reset-stats' and method == 'POST':
                emu.stats.reset()
                self._send(200, {'ok': True})
            elif path == '/_emulator/objects' and method == 'GET':
                kind = (query.get('kind') or [None])[0]
                namespace = (query.get('namespace') or [None])[0]
                self._send(200, emu.objects(kind, namespace) if kind else store.dump())
            elif path == '/_emulator/exec-table' and method in ('PUT', 'POST'):
                emu.set_exec_table(json.loads(raw or b'[]'))
                self._send(200, {'ok': True, 'rules': len(emu.exec_table.rules)})
            elif path == '/_emulator/load-balancer' and method == 'POST':
                body = json.loads(raw or b'{}')
                self._send(200, emu.set_load_balancer_ip(body['namespace'], body['name'], body['ip']))
            elif path == '/_emulator/nodes' and method == 'POST':
                body = json.loads(raw or b'{}')
                self._send(200, emu.add_node(body['name'], body.get('labels'), body.get('internal_ip')))
            else:
                raise ApiError(404, 'NotFound', 'unknown emulator endpoint %s %s' % (method, path))

    return Handler


def main(argv=None):
    parser = argparse.ArgumentParser(description='Kubernetes API double for tests')
    parser.add_argument('--listen', default='127.0.0.1:0', help='HOST:PORT (port 0 picks a free one)')
    parser.add_argument('--kubeconfig', help='write a kubeconfig for the double to this file')
    parser.add_argument('--simulate-kubelet', action='store_true', help='play controllers and kubelet')
    parser.add_argument('--nodes', default='', help='comma-separated Node objects to create at start')
    parser.add_argument('--crds', help='directory of CRD YAML files to register at start')
    parser.add_argument('--exec-table', help='YAML/JSON file with exec rules')
    parser.add_argument('--latency', type=float, default=0, help='added latency per API request, in ms')
    parser.add_argument('--spiderpool-webhooks', action='store_true', help='emulate the Spiderpool webhooks')
    parser.add_argument('--spiderpool-ipam', action='store_true',
                        help='pods with a multus default-network annotation get IPs from SpiderIPPools')
    parser.add_argument('--token', default=DEFAULT_TOKEN, help='bearer token required from clients ("" = none)')
    args = parser.parse_args(argv)
    host, _sep, port = args.listen.rpartition(':')
    emu = KubeEmulator(host or '127.0.0.1', int(port), token=args.token, latency_ms=args.latency,
                       simulate_kubelet=args.simulate_kubelet,
                       nodes=[n for n in args.nodes.split(',') if n],
                       exec_rules=kube_exec.load_rules(args.exec_table) if args.exec_table else None,
                       spiderpool_webhooks=args.spiderpool_webhooks, spiderpool_ipam=args.spiderpool_ipam)
    if args.crds:
        emu.load_crds(args.crds)
    if args.kubeconfig:
        emu.write_kubeconfig(args.kubeconfig)
    print('listening on %s' % emu.url, flush=True)
    try:
        emu.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
