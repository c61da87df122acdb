"""`pods/exec` for the Kubernetes API double: the server side of RFC 6455 (handshake and framing),
the channel protocol (v4/v5.channel.k8s.io) and the scripted exec table that answers commands."""
import base64
import hashlib
import json
import re
import struct

WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
PROTOCOLS = ('v5.channel.k8s.io', 'v4.channel.k8s.io')
STDOUT, STDERR, ERROR = 1, 2, 3


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def choose_protocol(header):
    offered = [p.strip() for p in (header or '').split(',') if p.strip()]
    for proto in PROTOCOLS:
        if proto in offered:
            return proto
    return None


def frame(payload, opcode=0x2):
    """One unmasked, final server frame."""
    head = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([size])
    elif size < 65536:
        head += bytes([126]) + struct.pack('!H', size)
    else:
        head += bytes([127]) + struct.pack('!Q', size)
    return head + payload


def channel_frame(channel, data):
    return frame(bytes([channel]) + (data.encode() if isinstance(data, str) else data))


def close_frame(code=1000):
    return frame(struct.pack('!H', code), opcode=0x8)


def exit_status(rc):
    """The JSON kubelet sends on the error channel; kubernetes.core reads causes[0].message as rc."""
    if rc == 0:
        return {'metadata': {}, 'status': 'Success'}
    return {'metadata': {}, 'status': 'Failure', 'message': 'command terminated with non-zero exit code: error '
            'executing command, exit status %d' % rc, 'reason': 'NonZeroExitCode',
            'details': {'causes': [{'reason': 'ExitCode', 'message': str(rc)}]}}


class ExecTable:
    """Ordered rules; the first whose pod, namespace, container and command patterns match answers.

    A rule is a dict: pod (regex, full match on the pod name), namespace (regex, full match),
    container (optional regex), command (regex searched in the space-joined command), stdout,
    stderr, rc, template (bool: format stdout/stderr with {pod}, {namespace}, {node}, {pod_ip},
    {command} and the command regex's named groups). A callable rule(pod, container, command)
    returning (stdout, stderr, rc) or None is accepted from library use.
    """

    def __init__(self, rules=None):
        self.rules = list(rules or [])

    def set(self, rules):
        self.rules = list(rules or [])

    def answer(self, pod, container, command):
        joined = ' '.join(command)
        meta = pod.get('metadata', {})
        for rule in self.rules:
            if callable(rule):
                found = rule(pod, container, command)
                if found is not None:
                    return found
                continue
            if not re.fullmatch(rule.get('pod', '.*'), meta.get('name', '')):
                continue
            if not re.fullmatch(rule.get('namespace', '.*'), meta.get('namespace', '')):
                continue
            if rule.get('container') and not re.fullmatch(rule['container'], container or ''):
                continue
            match = re.search(rule.get('command', '.*'), joined)
            if not match:
                continue
            stdout, stderr = rule.get('stdout', ''), rule.get('stderr', '')
            if rule.get('template'):
                values = {'pod': meta.get('name', ''), 'namespace': meta.get('namespace', ''),
                          'node': pod.get('spec', {}).get('nodeName', ''),
                          'pod_ip': pod.get('status', {}).get('podIP', ''), 'command': joined}
                values.update({k: v or '' for k, v in match.groupdict().items()})
                stdout, stderr = stdout.format(**values), stderr.format(**values)
            return stdout, stderr, int(rule.get('rc', 0))
        return '', 'kube-emulator: no exec table rule matches %r in pod %s/%s\n' % (
            joined, meta.get('namespace'), meta.get('name')), 127


def load_rules(path):
    with open(path, encoding='utf-8') as handle:
        text = handle.read()
    try:
        data = json.loads(text)
    except ValueError:
        import yaml  # pylint: disable=import-outside-toplevel
        data = yaml.safe_load(text)
    if isinstance(data, dict):
        data = data.get('rules', [])
    return data or []


def serve(handler, proto, stdout, stderr, rc):
    """Write the upgrade response and the whole conversation; the handler's socket closes after."""
    key = handler.headers.get('Sec-WebSocket-Key', '')
    handler.send_response_only(101, 'Switching Protocols')
    handler.send_header('Upgrade', 'websocket')
    handler.send_header('Connection', 'Upgrade')
    handler.send_header('Sec-WebSocket-Accept', accept_key(key))
    handler.send_header('Sec-WebSocket-Protocol', proto)
    handler.end_headers()
    out = handler.wfile
    if stdout:
        out.write(channel_frame(STDOUT, stdout))
    if stderr:
        out.write(channel_frame(STDERR, stderr))
    out.write(channel_frame(ERROR, json.dumps(exit_status(rc))))
    out.write(close_frame())
    out.flush()
    handler.close_connection = True
