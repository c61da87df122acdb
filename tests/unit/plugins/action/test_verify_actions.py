"""Controller-side pieces of the verify_exec and verify_report action plugins."""
import pytest

from ansible_collections.underlay.alicloud.plugins.action import verify_exec, verify_report


@pytest.mark.skipif(not verify_exec.HAS_KUBERNETES, reason='kubernetes client not installed')
def test_exec_failure_is_reported_for_that_pod_only():
    from kubernetes import client  # pylint: disable=import-outside-toplevel
    conf = client.Configuration()
    conf.host = 'http://127.0.0.1:9'  # discard port: nothing listens
    result = verify_exec.exec_once(conf, 'ns', 'pod-a', ['sh', '-c', 'true'], None, 5)
    assert result['pod'] == 'pod-a' and result['rc'] is None and result['stdout'] == ''
    assert result['error'] and '\n' not in result['error']


def test_report_files_rewritten_only_when_different(tmp_path):
    path = tmp_path / 'report.md'
    assert verify_report._write(str(path), 'a\n') is True  # pylint: disable=protected-access
    assert verify_report._write(str(path), 'a\n') is False  # pylint: disable=protected-access
    assert verify_report._write(str(path), 'b\n') is True  # pylint: disable=protected-access
    assert path.read_text() == 'b\n'
