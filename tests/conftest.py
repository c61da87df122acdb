"""Shared pytest set-up: make the collection importable as ansible_collections.underlay.alicloud.

ansible-core's collection finder is installed before any test module imports collection code, so
plain imports and ansible-core's plugin loaders (used by the inventory and action plugin tests)
resolve ``ansible_collections`` the same way in one process.
"""
import os
import sys

from ansible.plugins.loader import init_plugin_loader
from ansible.utils.collection_loader import AnsibleCollectionConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, '.collections')
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
if AnsibleCollectionConfig.collection_finder is None:
    init_plugin_loader([COLLECTIONS])
