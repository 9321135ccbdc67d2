"""No Docker engine here: replay the Dockerfile's install steps in a fresh virtualenv and
check that they give a working `harvester` (a non-editable install, data files included)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT


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
