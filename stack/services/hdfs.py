"""HDFS: one NameNode and two DataNodes from the Hadoop jars, formatted once.

Each daemon is a plain ``java -cp <conf>:<webapps>:<jars>/* <main class>``; the NameNode,
the DataNodes and the FsShell client each get a generated configuration directory.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import uuid
from pathlib import Path
from xml.sax.saxutils import escape

from cdr.errors import CdrError
from stack.java import classpath, java, require_jars
from stack.paths import TEMPLATES
from stack.probes import NotReady, http_json
from stack.process import ProcessSpec, tail
from stack.services.base import Endpoint, Service

NAMENODE_MAIN = "org.apache.hadoop.hdfs.server.namenode.NameNode"
DATANODE_MAIN = "org.apache.hadoop.hdfs.server.datanode.DataNode"
FS_SHELL_MAIN = "org.apache.hadoop.fs.FsShell"
PROBE_DIR = "/tmp/cdr-stack-probe"


def hadoop_xml(properties: dict[str, str]) -> str:
    body = "\n".join(
        f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>" for k, v in properties.items()
    )
    header = '<?xml version="1.0"?>\n<!-- Written by the local stack; edits are overwritten. -->\n'
    return f"{header}<configuration>\n{body}\n</configuration>\n"


class Hdfs(Service):
    name = "hdfs"

    @property
    def conf_dir(self) -> Path:
        """Configuration of the NameNode and of clients (FsShell)."""
        return self.dir / "conf"

    @property
    def namenode_dir(self) -> Path:
        return self.dir / "namenode"

    def datanode_dir(self, index: int) -> Path:
        return self.dir / f"datanode-{index}"

    @property
    def datanode_count(self) -> int:
        return len(self.settings.hdfs.datanode_ports)

    def _core_site(self) -> dict[str, str]:
        return {
            "fs.defaultFS": self.settings.hdfs.uri,
            "hadoop.tmp.dir": str(self.dir / "tmp"),
            # /prom on every daemon's HTTP port, scraped by Prometheus.
            "hadoop.prometheus.endpoint.enabled": "true",
        }

    def _hdfs_site(self) -> dict[str, str]:
        hdfs, ip = self.settings.hdfs, self.settings.stack.bind_ip
        return {
            "dfs.namenode.name.dir": f"file://{self.namenode_dir}",
            "dfs.namenode.rpc-address": f"{ip}:{hdfs.namenode_rpc_port}",
            "dfs.namenode.http-address": f"{ip}:{hdfs.namenode_http_port}",
            "dfs.replication": str(hdfs.replication),
            # No checkpointing SecondaryNameNode runs; keep its address off the network anyway.
            "dfs.namenode.secondary.http-address": f"{ip}:0",
            # Development stack: one OS user per machine, no HDFS permission model in the way.
            "dfs.permissions.enabled": "false",
            # Leave safe mode as soon as the blocks are reported instead of 30 s later.
            "dfs.namenode.safemode.extension": "0",
            # DataNodes register as 127.0.0.1, which has no reverse-resolvable host name everywhere.
            "dfs.namenode.datanode.registration.ip-hostname-check": "false",
        }

    def _datanode_site(self, index: int) -> dict[str, str]:
        data_port, http_port, ipc_port = self.settings.hdfs.datanode_ports[index - 1]
        ip = self.settings.stack.bind_ip
        return {
            **self._hdfs_site(),
            "dfs.datanode.data.dir": f"file://{self.datanode_dir(index) / 'data'}",
            "dfs.datanode.address": f"{ip}:{data_port}",
            "dfs.datanode.http.address": f"{ip}:{http_port}",
            "dfs.datanode.ipc.address": f"{ip}:{ipc_port}",
        }

    def _write_conf(self, conf_dir: Path, hdfs_site: dict[str, str]) -> None:
        conf_dir.mkdir(parents=True, exist_ok=True)
        (conf_dir / "core-site.xml").write_text(hadoop_xml(self._core_site()))
        (conf_dir / "hdfs-site.xml").write_text(hadoop_xml(hdfs_site))
        shutil.copyfile(TEMPLATES / "hadoop-log4j.properties", conf_dir / "log4j.properties")

    def _java_argv(
        self, conf_dir: Path, heap_mb: int, main_class: str, *args: str, jvm_opts: tuple[str, ...] = ()
    ) -> list[str]:
        jars = require_jars(self.paths.jar_group("hadoop"))
        return [
            java(self.settings), f"-Xmx{heap_mb}m", "-XX:+UseSerialGC", *jvm_opts,
            f"-Dhadoop.home.dir={self.dir}", f"-Dhadoop.log.dir={self.paths.logs}",
            "-cp", classpath(conf_dir, self.paths.jar_group("hadoop-webapps"), jars),
            main_class, *args,
        ]  # fmt: skip

    def prepare(self) -> None:
        self._write_conf(self.conf_dir, self._hdfs_site())
        for index in range(1, self.datanode_count + 1):
            self._write_conf(self.datanode_dir(index) / "conf", self._datanode_site(index))
        if not (self.namenode_dir / "current" / "VERSION").exists():
            self._format()

    def _format(self) -> None:
        """Format the NameNode once. DataNode data left from an earlier NameNode would be
        rejected ("Incompatible clusterIDs"), so it goes with it."""
        for index in range(1, self.datanode_count + 1):
            shutil.rmtree(self.datanode_dir(index) / "data", ignore_errors=True)
        cluster_id = f"CID-cdr-{uuid.uuid4()}"
        argv = self._java_argv(
            self.conf_dir, self.settings.hdfs.namenode_heap_mb, NAMENODE_MAIN,
            "-format", "-nonInteractive", "-clusterId", cluster_id,
        )  # fmt: skip
        log_path = self.paths.log("hdfs-format")
        with log_path.open("ab") as log:
            formatted = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if formatted.returncode != 0:
            raise CdrError(f"formatting the NameNode failed; last lines of {log_path}:\n{tail(log_path, 20)}")

    def processes(self) -> list[ProcessSpec]:
        hdfs = self.settings.hdfs
        specs = [
            ProcessSpec(
                "hdfs-namenode",
                self._java_argv(self.conf_dir, hdfs.namenode_heap_mb, NAMENODE_MAIN),
                ports=[hdfs.namenode_rpc_port, hdfs.namenode_http_port],
                marker=str(self.conf_dir),
            )
        ]
        for index, ports in enumerate(hdfs.datanode_ports, start=1):
            conf = self.datanode_dir(index) / "conf"
            specs.append(
                ProcessSpec(
                    f"hdfs-datanode-{index}",
                    self._java_argv(conf, hdfs.datanode_heap_mb, DATANODE_MAIN),
                    ports=list(ports),
                    marker=str(conf),
                )
            )
        return specs

    # --- probe: live DataNodes, then a real write and read through WebHDFS ---------------------

    @property
    def webhdfs(self) -> str:
        return f"http://{self.settings.stack.bind_ip}:{self.settings.hdfs.namenode_http_port}/webhdfs/v1"

    def _webhdfs(self, method: str, path: str, op: str, data: bytes | None = None, **params: str) -> bytes:
        """One WebHDFS call, following the NameNode's redirect to a DataNode for data operations."""
        import requests

        query = {"op": op, "user.name": getpass.getuser(), **params}
        try:
            response = requests.request(
                method, f"{self.webhdfs}{path}", params=query, allow_redirects=False, timeout=10
            )
            if response.status_code == 307:
                response = requests.request(method, response.headers["Location"], data=data, timeout=10)
        except requests.RequestException as exc:
            raise NotReady(f"WebHDFS {op} {path}: {type(exc).__name__}") from None
        if not response.ok:
            raise NotReady(f"WebHDFS {op} {path}: HTTP {response.status_code} {response.text[:200]}")
        return response.content

    def probe(self) -> None:
        state = http_json(
            f"http://{self.settings.stack.bind_ip}:{self.settings.hdfs.namenode_http_port}"
            "/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState"
        )
        beans = state.get("beans") or [{}]
        live = beans[0].get("NumLiveDataNodes", 0)
        if live < self.datanode_count:
            raise NotReady(f"{live} of {self.datanode_count} DataNodes registered")
        if beans[0].get("FSState") != "Operational":
            raise NotReady(f"NameNode state {beans[0].get('FSState')} (safe mode)")
        payload = uuid.uuid4().hex.encode()
        path = f"{PROBE_DIR}/{payload.decode()}"
        self._webhdfs("PUT", path, "CREATE", data=payload, overwrite="true")
        read_back = self._webhdfs("GET", path, "OPEN")
        self._webhdfs("DELETE", path, "DELETE")
        if read_back != payload:
            raise NotReady("a file written through WebHDFS read back different bytes")

    def after_ready(self) -> None:
        for directory in (self.settings.hdfs.root, self.settings.hive.warehouse_dir):
            self._webhdfs("PUT", directory, "MKDIRS")

    def fs_shell_argv(self, *args: str) -> list[str]:
        """``hdfs dfs <args>`` without a Hadoop installation: FsShell on the stack's jars and client conf."""
        quiet = f"-Dlog4j.configuration=file:{TEMPLATES / 'hadoop-client-log4j.properties'}"
        return self._java_argv(self.conf_dir, 256, FS_SHELL_MAIN, *args, jvm_opts=(quiet,))

    def endpoints(self) -> list[Endpoint]:
        hdfs = self.settings.hdfs
        return [
            Endpoint("HDFS", hdfs.uri),
            Endpoint("HDFS NameNode UI", f"http://127.0.0.1:{hdfs.namenode_http_port}"),
        ]
