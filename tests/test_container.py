"""No Docker engine here: replay the Dockerfile's install steps in a fresh virtualenv and
check that they give a working `harvester` (a non-editable install, data files included)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, feed_source, free_port, make_config
from .test_daemon import BASE, CONSOLE


def test_dockerfile_declares_what_the_container_needs():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", text, re.M)
    assert re.search(r"^USER harvester$", text, re.M)  # not root
    assert 'VOLUME ["/data"]' in text and "HEALTHCHECK" in text and "/healthz" in text
    assert 'ENTRYPOINT ["harvester"]' in text
    assert 'CMD ["run", "--http", "0.0.0.0:9108"' in text


@pytest.mark.slow
def test_dockerfile_install_steps_give_a_working_harvester(tmp_path: Path):
    text = (ROOT / "Dockerfile").read_text()
    src = tmp_path / "src"
    src.mkdir()
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        *paths, _dest = line.split()
        for p in paths:
            origin = ROOT / p
            if origin.is_dir():
                shutil.copytree(origin, src / p, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(origin, src / p)
    [install] = re.findall(r"^RUN (pip install [^&\n]+)", text, re.M)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", *install.split()], cwd=src, check=True,
                   capture_output=True, timeout=600)
    exe = venv / "bin" / "harvester"
    shutil.rmtree(src)  # as the Dockerfile does: the install must not need the sources
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "0.1.0" in version.stdout
    demo = subprocess.run([str(exe), "demo"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert demo.returncode == 0, demo.stderr
    assert "icmpd-rss: 3 new, 1 changed, 6 unchanged" in demo.stdout
    assert "icmpd-news: 2 new, 1 changed, 7 unchanged" in demo.stdout  # listing data shipped


def test_the_healthcheck_passes_with_a_proxy_in_the_environment(
        server, icmpd_a, tmp_path, running, monkeypatch):
    """The Dockerfile's HEALTHCHECK, run as Docker runs it, against a daemon started as the
    README says a proxied one is (`-e https_proxy=…`): neither the check nor a loopback
    source may be sent to that proxy, which cannot reach this machine's loopback."""
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("http_proxy", dead)
    monkeypatch.setenv("https_proxy", dead)
    d = running(make_config(tmp_path, BASE + feed_source("icmpd-rss", icmpd_a) + CONSOLE))
    d.wait_for(lambda: server.hits("/rss"), what="a poll")
    assert d.logs()[0]["message"].endswith(
        f"; proxy: {dead} (from environment variable http_proxy and environment variable "
        "https_proxy)")
    cmd = re.search(r"^HEALTHCHECK .*\\\n\s*CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(),
                    re.M)
    argv = [sys.executable if a == "python" else a.replace("9108", str(d.port))
            for a in json.loads(cmd.group(1))]
    assert subprocess.run(argv, capture_output=True, timeout=10).returncode == 0
    assert d.stop() == 0
    assert subprocess.run(argv, capture_output=True, timeout=10).returncode == 1
