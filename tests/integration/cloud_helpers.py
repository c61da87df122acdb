"""Helpers for integration tests that run real ansible-playbook against the ECS/VPC emulator."""

import json
import os
import re
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')
LAB_WORLD = os.path.join(ROOT, 'inventories', 'lab', 'world.yml')
LAB_INVENTORY = os.path.join(ROOT, 'inventories', 'lab', 'lab.alicloud_ecs.yml')
sys.path.insert(0, os.path.join(ROOT, 'tests', 'emulator'))

from ecs_emulator import EcsEmulator  # noqa: E402  pylint: disable=wrong-import-position,unused-import


def base_env():
    """The environment of a clean ansible run: project venv, collections, no proxies, no stray keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(('ALIBABA_CLOUD_', 'ANSIBLE_', 'K8S_AUTH_'))
           and k.lower() not in ('http_proxy', 'https_proxy', 'all_proxy')}
    env.update({'PATH': os.pathsep.join([VENV_BIN, os.path.join(ROOT, '.cache', 'bin'), env.get('PATH', '')]),
                'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'),
                'ANSIBLE_COLLECTIONS_PATH': os.path.join(ROOT, '.collections'),
                'ANSIBLE_NOCOLOR': '1', 'PYTHONDONTWRITEBYTECODE': '1',
                # No instance metadata service or CLI profile here: the credential chain must not wait.
                'ALIBABA_CLOUD_ECS_METADATA_DISABLED': 'true', 'ALIBABA_CLOUD_CLI_PROFILE_DISABLED': 'true'})
    return env


def cloud_env(emu, key_id='LTAIlabkey', secret='labsecret', region='cn-hangzhou', token=None):
    """base_env() pointed at an emulator, with an AccessKey pair (none when key_id is None) and an STS token."""
    env = base_env()
    env.update({'ALIBABA_CLOUD_ECS_ENDPOINT': emu.url, 'ALIBABA_CLOUD_VPC_ENDPOINT': emu.url,
                'ALIBABA_CLOUD_REGION_ID': region})
    if key_id:
        env.update({'ALIBABA_CLOUD_ACCESS_KEY_ID': key_id, 'ALIBABA_CLOUD_ACCESS_KEY_SECRET': secret})
    if token:
        env['ALIBABA_CLOUD_SECURITY_TOKEN'] = token
    return env


def load_world(path=LAB_WORLD):
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def write_world(directory, world, name='world.yml'):
    path = os.path.join(str(directory), name)
    with open(path, 'w', encoding='utf-8') as handle:
        yaml.safe_dump(world, handle, sort_keys=False)
    return path


class PlayResult:
    """Outcome of one ansible-playbook run: rc, combined output, and the registered task results."""

    def __init__(self, proc, results):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.results = results

    def failure(self):
        """The result dict of the first failed task (from the default callback's JSON)."""
        marker = 'FAILED! => '
        if marker not in self.output:
            raise AssertionError('no failed task in output:\n' + self.output)
        text = self.output.split(marker, 1)[1]
        return json.JSONDecoder().raw_decode(text)[0]

    def recap(self):
        """{host: {ok, changed, failed, ...}} from the PLAY RECAP."""
        counts = {}
        lines = self.output.split('PLAY RECAP', 1)[-1].splitlines()
        for line in lines[1:]:
            if not re.match(r'\S+\s*:\s+ok=\d+', line):   # stderr (warnings) follows the recap
                continue
            host, rest = line.split(':', 1)
            fields = dict(part.split('=') for part in rest.split() if '=' in part)
            counts[host.strip()] = dict((k, int(v)) for k, v in fields.items())
        return counts


def run_tasks(tmp_path, env, tasks, *args, inventory='localhost,', hosts='localhost', expect_rc=0, extra_vars=None):
    """Run ``tasks`` (a list of task dicts) in one play; every task's registered result is returned.

    Each task without ``register`` is registered as ``r<index>``; the results are written to a
    JSON file by a final task that runs even after a failure.
    """
    out = os.path.join(str(tmp_path), 'results-%d.json' % time.monotonic_ns())
    names = []
    body = []
    for index, task in enumerate(tasks):
        task = dict(task)
        task.setdefault('register', 'r%d' % index)
        names.append(task['register'])
        body.append(task)
    dump = {'name': 'Dump results', 'delegate_to': 'localhost', 'run_once': True, 'check_mode': False, 'diff': False,
            'ansible.builtin.copy': {'dest': out, 'mode': '0600', 'content': '{{ %s | to_json }}' % (
                '{' + ', '.join("'%s': (%s | default(none))" % (n, n) for n in names) + '}')}}
    play = [{'name': 'Test play', 'hosts': hosts, 'gather_facts': False,
             'vars': {'ansible_python_interpreter': sys.executable},
             'tasks': [{'block': body, 'always': [dump]}]}]
    playbook = os.path.join(str(tmp_path), 'play-%d.yml' % time.monotonic_ns())
    with open(playbook, 'w', encoding='utf-8') as handle:
        yaml.safe_dump(play, handle, sort_keys=False)
    cmd = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory, '-c', 'local', *args, playbook]
    if extra_vars:
        cmd[1:1] = ['-e', json.dumps(extra_vars)]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    results = None
    if os.path.exists(out):
        with open(out, encoding='utf-8') as handle:
            results = json.load(handle)
    result = PlayResult(proc, results)
    if expect_rc is not None and result.rc != expect_rc:
        raise AssertionError('ansible-playbook exited %d, expected %d:\n%s' % (result.rc, expect_rc, result.output))
    return result


def run_playbook(playbook, env, *args, inventory=LAB_INVENTORY, expect_rc=0, cwd=ROOT):
    """Run a project playbook with an inventory; returns a PlayResult (no registered results)."""
    cmd = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory, *args, playbook]
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=900, check=False)
    result = PlayResult(proc, None)
    if expect_rc is not None and result.rc != expect_rc:
        raise AssertionError('ansible-playbook exited %d, expected %d:\n%s' % (result.rc, expect_rc, result.output))
    return result
