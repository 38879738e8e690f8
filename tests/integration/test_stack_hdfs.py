"""HDFS of the local stack: what one client writes another reads, with replication 2."""

from __future__ import annotations

import getpass
import subprocess
import uuid

import pytest
import requests

pytestmark = pytest.mark.stack


def _fs(local_stack, *args: str, stdin: bytes | None = None) -> bytes:
    """`hdfs dfs <args>` through FsShell (the Java client)."""
    argv = local_stack.service("hdfs").fs_shell_argv(*args)
    return subprocess.run(argv, input=stdin, capture_output=True, check=True, timeout=120).stdout


def _webhdfs_url(local_stack, path: str) -> str:
    return f"http://127.0.0.1:{local_stack.settings.hdfs.namenode_http_port}/webhdfs/v1{path}"


def test_file_written_through_webhdfs_is_read_by_fsshell(local_stack):
    path = f"{local_stack.settings.hdfs.root}/tests/webhdfs-{uuid.uuid4().hex}.txt"
    payload = "".join(f"line {i} from WebHDFS\n" for i in range(1000)).encode()
    params = {"op": "CREATE", "overwrite": "true", "user.name": getpass.getuser()}
    redirect = requests.put(_webhdfs_url(local_stack, path), params=params, allow_redirects=False, timeout=10)
    assert redirect.status_code == 307  # the NameNode sends the data to a DataNode
    created = requests.put(redirect.headers["Location"], data=payload, timeout=30)
    assert created.status_code == 201

    assert _fs(local_stack, "-cat", path) == payload
    assert _fs(local_stack, "-stat", "%r %b", path).decode().split() == [
        str(local_stack.settings.hdfs.replication),
        str(len(payload)),
    ]


def test_file_written_through_fsshell_is_read_through_webhdfs(local_stack):
    path = f"{local_stack.settings.hdfs.root}/tests/fsshell-{uuid.uuid4().hex}.bin"
    payload = uuid.uuid4().bytes * 50_000  # 800 kB
    _fs(local_stack, "-mkdir", "-p", f"{local_stack.settings.hdfs.root}/tests")
    _fs(local_stack, "-put", "-", path, stdin=payload)

    params = {"op": "OPEN", "user.name": getpass.getuser()}
    read = requests.get(_webhdfs_url(local_stack, path), params=params, timeout=30)
    assert read.status_code == 200
    assert read.content == payload
    status = requests.get(_webhdfs_url(local_stack, path), params={"op": "GETFILESTATUS"}, timeout=10).json()
    assert status["FileStatus"]["replication"] == local_stack.settings.hdfs.replication


def test_platform_directories_exist(local_stack):
    listing = requests.get(
        _webhdfs_url(local_stack, local_stack.settings.hdfs.root), params={"op": "LISTSTATUS"}, timeout=10
    ).json()
    names = {entry["pathSuffix"] for entry in listing["FileStatuses"]["FileStatus"]}
    warehouse = local_stack.settings.hive.warehouse_dir.removeprefix(local_stack.settings.hdfs.root + "/")
    assert warehouse in names


def test_both_datanodes_are_live(local_stack):
    url = f"http://127.0.0.1:{local_stack.settings.hdfs.namenode_http_port}/jmx"
    beans = requests.get(url, params={"qry": "Hadoop:service=NameNode,name=FSNamesystemState"}, timeout=10).json()
    state = beans["beans"][0]
    assert state["NumLiveDataNodes"] == len(local_stack.settings.hdfs.datanode_ports) == 2
    assert state["NumDeadDataNodes"] == 0
