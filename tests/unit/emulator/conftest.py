"""Fixtures for the emulator tests: emulators on the lab world and real-SDK clients for them."""
import os

import pytest
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vpc20160428.client import Client as VpcClient

from ansible_collections.underlay.alicloud.tests.emulator.ecs_emulator import EcsEmulator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LAB_WORLD = os.path.join(ROOT, 'inventories', 'lab', 'world.yml')
WORLDS = os.path.join(ROOT, 'tests', 'worlds')


class Sdk:
    """Builds real Alibaba SDK clients pointed at an emulator."""

    root = ROOT
    lab_world = LAB_WORLD
    worlds = WORLDS

    @staticmethod
    def config(emu, key='LTAIlabkey', secret='labsecret', **extra):
        extra.setdefault('read_timeout', 20000)
        return Config(access_key_id=key, access_key_secret=secret, endpoint=emu.endpoint, protocol='http',
                      region_id='cn-hangzhou', **extra)

    def ecs(self, emu, **kwargs):
        return EcsClient(self.config(emu, **kwargs))

    def vpc(self, emu, **kwargs):
        return VpcClient(self.config(emu, **kwargs))

    @staticmethod
    def error(func, *args, **kwargs):
        """The SDK exception `func(*args, **kwargs)` raises (the test fails if it succeeds)."""
        with pytest.raises(AlibabaCloudException) as info:
            func(*args, **kwargs)
        return info.value


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ('HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy'):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(name='sdk', scope='session')
def sdk_fixture():
    return Sdk()


@pytest.fixture(name='lab', scope='module')
def lab_fixture():
    """A read-only lab emulator shared by a module's tests (tests that mutate use fresh_lab)."""
    with EcsEmulator(LAB_WORLD) as emu:
        yield emu


@pytest.fixture(name='fresh_lab')
def fresh_lab_fixture():
    with EcsEmulator(LAB_WORLD) as emu:
        yield emu
