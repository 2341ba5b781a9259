"""The mounted configuration is the repository's config/, not a copy: the chart's files/ are
symlinks that Helm's loader follows (into `helm package` archives too), the ConfigMap carries
each file byte for byte, and the gateway really loads it from the mount with the chart's
variables over it, known differences included."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import helm_python
import pytest
import yaml

from comparator.rules import Rules
from shadow_proxy.config import load_config
from tests.helm.chart import CHART_DIR, REPO_ROOT, VALUE_SETS, env_values, render, render_archive

CONFIG_FILES = ("gateway.yaml", "comparator.yaml", "known_differences.yaml")
LINKS = {name: REPO_ROOT / "config" / name for name in CONFIG_FILES} | {
    "alerts.yml": REPO_ROOT / "config" / "prometheus" / "alerts.yml"
}


def test_chart_files_are_symlinks_into_config() -> None:
    for name, target in LINKS.items():
        link = CHART_DIR / "files" / name
        assert link.is_symlink(), f"files/{name} must be a symlink, not a copy"
        assert not os.path.isabs(os.readlink(link)), "relative, so it holds in any checkout"
        assert link.resolve() == target.resolve()
    assert sorted(p.name for p in (CHART_DIR / "files").iterdir()) == sorted(LINKS)


def _configmap(values: dict) -> dict:
    rendered = render(values)
    [configmap] = rendered.of_kind("ConfigMap")
    return configmap


@pytest.mark.parametrize("name", VALUE_SETS)
def test_configmap_carries_config_files_byte_for_byte(name: str) -> None:
    data = _configmap(VALUE_SETS[name])["data"]
    assert sorted(data) == sorted(CONFIG_FILES)
    for file in CONFIG_FILES:
        assert data[file].encode() == (REPO_ROOT / "config" / file).read_bytes(), file


def test_packaged_chart_carries_the_files_themselves(tmp_path: Path) -> None:
    """`helm package` resolves the symlinks: a published archive works without the repository."""
    archive = Path(helm_python.package(CHART_DIR, destination=tmp_path))
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        gateway = members["agno-session/files/gateway.yaml"]
        assert gateway.isfile() and not gateway.issym()
        assert tar.extractfile(gateway).read() == (REPO_ROOT / "config" / "gateway.yaml").read_bytes()
    from_archive = render_archive(archive.read_bytes(), {})
    [configmap] = from_archive.of_kind("ConfigMap")
    assert configmap["data"] == _configmap({})["data"]


def _mount(tmp_path: Path, values: dict) -> tuple[Path, dict[str, str]]:
    """The gateway container's view: its ConfigMap files at the mount path, and its env."""
    rendered = render(values)
    gateway = rendered.one("Deployment", "gateway")
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "config"]
    [volume] = [v for v in gateway["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"]
    [configmap] = rendered.of_kind("ConfigMap")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    root = tmp_path / mount["mountPath"].lstrip("/")
    root.mkdir(parents=True)
    for file, content in configmap["data"].items():
        (root / file).write_text(content)
    env = env_values(container)
    config_path = Path(env["AGNO_GATEWAY_CONFIG"])
    assert config_path.parent == Path(mount["mountPath"]), "AGNO_GATEWAY_CONFIG names a file of the mount"
    env["AGNO_GATEWAY_CONFIG"] = str(tmp_path / config_path.relative_to("/"))
    return root, env


def test_gateway_loads_the_mounted_config_with_the_chart_variables(tmp_path: Path) -> None:
    root, env = _mount(tmp_path, VALUE_SETS["operator"])
    config = load_config(env["AGNO_GATEWAY_CONFIG"], env=env)
    assert config.legacy.url == "http://agentos.sessions.svc:7777"
    assert config.native.url == "http://parity-agno-session-native:8080"
    assert config.listen.port == 8090
    assert {g.stage for g in config.groups} == {"shadow"}
    assert {g.sample_rate for g in config.groups} == {0.5}
    assert config.shadow.record == "/tmp/requests.jsonl"
    # `rules:` is relative to the mounted gateway.yaml, and the comparator rules bring the
    # known differences beside them: without them, page=0 would count as a mismatch.
    assert Path(config.rules) == root / "comparator.yaml"
    rules = Rules.load(config.rules)
    expected_ids = [e["id"] for e in yaml.safe_load((REPO_ROOT / "config" / "known_differences.yaml").read_text())]
    assert [k.id for k in rules.known] == expected_ids and expected_ids


def test_in_process_gateway_keeps_gateway_yaml_defaults(tmp_path: Path) -> None:
    _, env = _mount(tmp_path, VALUE_SETS["in-process"])
    config = load_config(env["AGNO_GATEWAY_CONFIG"], env=env)
    assert config.native.url is None, "no native Deployment: native runs in-process"
    assert {g.stage for g in config.groups} == {"primary"}
    repo = load_config(REPO_ROOT / "config" / "gateway.yaml", env={})
    assert [g.routes for g in config.groups] == [g.routes for g in repo.groups]
    assert {g.sample_rate for g in config.groups} == {g.sample_rate for g in repo.groups}


def test_config_checksum_rolls_the_gateway_when_config_changes(tmp_path: Path) -> None:
    """A changed gateway.yaml changes the pod template, so `helm upgrade` restarts the pods."""
    import shutil

    copy = tmp_path / "agno-session"
    shutil.copytree(CHART_DIR, copy)  # follows the symlinks: real files in the copy
    before = render({}, chart_dir=copy).one("Deployment", "gateway")["spec"]["template"]["metadata"]["annotations"]
    with (copy / "files" / "gateway.yaml").open("a") as fh:
        fh.write("\n# changed\n")
    after = render({}, chart_dir=copy).one("Deployment", "gateway")["spec"]["template"]["metadata"]["annotations"]
    assert before["checksum/config"] != after["checksum/config"]
    assert before["checksum/secret"] == after["checksum/secret"]


def test_missing_config_file_fails_the_render(tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "agno-session"
    shutil.copytree(CHART_DIR, copy)
    (copy / "files" / "known_differences.yaml").unlink()
    with pytest.raises(helm_python.HelmError, match="known_differences.yaml"):
        render({}, chart_dir=copy)
