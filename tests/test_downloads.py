"""Verified downloads against a server on 127.0.0.1: good files, a checksum mismatch
and a dropped connection, none of which may leave a partial file."""

from __future__ import annotations

import functools
import gzip
import http.server
import io
import struct
import tarfile
import threading

import numpy as np
import pooch
import pytest

from models.downloads import DownloadError, load, read_cifar_binary


def _idx(array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output quiet
        pass

    def do_GET(self):
        if self.path.endswith("dropped.gz"):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b" + bytes(500))
            self.wfile.flush()
            self.connection.shutdown(2)  # cut the connection mid-body
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    rng = np.random.default_rng(0)
    (root / "train-images-idx3-ubyte.gz").write_bytes(_idx(rng.integers(0, 255, (20, 28, 28))))
    (root / "train-labels-idx1-ubyte.gz").write_bytes(_idx(np.arange(20) % 10))
    (root / "t10k-images-idx3-ubyte.gz").write_bytes(_idx(rng.integers(0, 255, (8, 28, 28))))
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(_idx(np.arange(8) % 10))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    registry = {p.name: "sha256:" + pooch.file_hash(str(p)) for p in sorted(root.iterdir())}
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", registry, httpd
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_caches_and_keeps_the_official_split(tmp_path, server):
    url, registry, httpd = server
    data = load("mnist", tmp_path / "cache", base_url=url, registry=registry)
    assert data.train_x.shape == (20, 1, 28, 28) and data.test_x.shape == (8, 1, 28, 28)
    assert data.train_y.tolist() == [i % 10 for i in range(20)]
    httpd.shutdown()  # the second time comes from the cache
    again = load("mnist", tmp_path / "cache", base_url=url, registry=registry)
    assert (again.train_x == data.train_x).all()


def test_a_checksum_mismatch_keeps_nothing(tmp_path, server):
    url, registry, _ = server
    wrong = dict(registry, **{"train-images-idx3-ubyte.gz": "sha256:" + "0" * 64})
    with pytest.raises(DownloadError, match="does not match its published checksum"):
        load("mnist", tmp_path / "cache", base_url=url, registry=wrong)
    assert not (tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz").exists()


def test_a_dropped_connection_keeps_nothing(tmp_path, server):
    url, _, _ = server
    with pytest.raises(DownloadError, match="download failed"):
        load("mnist", tmp_path / "cache", base_url=url, registry={"dropped.gz": "sha256:" + "1" * 64})
    leftovers = list((tmp_path / "cache" / "mnist").iterdir()) if (tmp_path / "cache" / "mnist").exists() else []
    assert leftovers == []


def test_cifar_binary_records_and_archive(tmp_path, server):
    url, _, _ = server
    rng = np.random.default_rng(1)
    records = lambda n: b"".join(bytes([i % 10]) + rng.integers(0, 255, 3072, dtype=np.uint8).tobytes()  # noqa: E731
                                 for i in range(n))
    x, y = read_cifar_binary(records(4))
    assert x.shape == (4, 3, 32, 32) and y.tolist() == [0, 1, 2, 3]
    archive = tmp_path / "www" / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            blob = records(3)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    registry = {archive.name: "sha256:" + pooch.file_hash(str(archive))}
    data = load("cifar10", tmp_path / "cache", base_url=url, registry=registry)
    assert data.train_x.shape == (15, 3, 32, 32) and data.test_x.shape == (3, 3, 32, 32)
    assert data.class_names[0] == "airplane"
    from models.importers import DatasetError

    with pytest.raises(DatasetError, match="whole number"):
        read_cifar_binary(b"\x00" * 100)
