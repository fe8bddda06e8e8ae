"""Config loading: unknown keys, wrong types, contradictions and out-of-range values fail up
front with a message naming the file and the key; YAML is data only (safe_load)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.config import load_config
from pipeline.errors import UserError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    return path


BASE = "data:\n  leads: leads.csv\n"


def test_minimal_config_loads_with_defaults(tmp_path):
    cfg = load_config(_write(tmp_path, BASE))
    assert cfg.name == "cfg"
    assert cfg.data.leads == (tmp_path / "leads.csv").resolve()
    assert cfg.label.column == "converted"
    assert cfg.analysis.significance == 0.05
    assert cfg.registry.tracking_uri.startswith("sqlite:////")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(UserError, match=r"config file .*nope\.yaml not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("text", "pattern"), [
    (BASE + "colums:\n  fit: [a]\n", r"cfg\.yaml: unknown key 'colums'"),
    (BASE + "columns:\n  fitt: [a]\n", r"unknown key 'columns\.fitt'"),
    (BASE + "points:\n  pdo: twenty\n", r"key 'points\.pdo': .*\(got 'twenty'\)"),
    (BASE + "seed: [1, 2]\n", r"key 'seed': "),
    (BASE + "columns:\n  fit: [a, b]\n  exclude: [b]\n",
     r"columns \['b'\] are both FIT/PAIN and in exclude"),
    (BASE + "columns:\n  fit: [a]\n  pain: [a]\n", r"columns \['a'\] are both FIT and PAIN"),
    (BASE + "columns:\n  fit: [converted]\n",
     r"'converted' is the label\.column and also listed in columns\.fit"),
    (BASE + "columns:\n  pain: [lead_id]\n", r"'lead_id' is the data\.id_column"),
    (BASE + "label:\n  positive: [yes]\n  negative: [yes]\n", r"both positive and negative"),
    (BASE + "threshold:\n  target_rate: [0.5, 1.5]\n", r"target_rate must be \[low, high\] within"),
    (BASE + "threshold:\n  fit_quantile: 1.0\n", r"fit_quantile must be in \(0, 1\)"),
    (BASE + "model:\n  holdout_share: 0.95\n", r"holdout_share must be in \(0, 0\.9\)"),
    (BASE + "points:\n  range: [100, 0]\n", r"range must be \[low, high\] with low < high"),
    (BASE + "points:\n  scaling: logit\n", r"key 'points\.scaling'"),
    (BASE + "analysis:\n  n_bins: 1\n", r"n_bins must be between 2 and 50, got 1"),
    (BASE + "analysis:\n  significance: 0\n", r"significance must be in \(0, 1\], got 0"),
    (BASE + "analysis:\n  significance: 1.5\n", r"significance must be in \(0, 1\], got 1.5"),
    (BASE + "events:\n  half_life_grid: [0, 3]\n", r"half_life_grid"),
    ("data:\n  leads: [unclosed\n", r"not valid YAML"),
    ("- a\n- b\n", r"expected a mapping of keys at the top level"),
    ("name: x\n", r"key 'data\.leads' is required"),
])
def test_invalid_configs_name_the_key(tmp_path, text, pattern):
    path = _write(tmp_path, text)
    with pytest.raises(UserError, match=pattern) as info:
        load_config(path)
    assert str(path) in info.value.message


def test_unknown_key_lists_known_keys(tmp_path):
    with pytest.raises(UserError) as info:
        load_config(_write(tmp_path, BASE + "pointz: {}\n"))
    assert "points" in info.value.hint and "threshold" in info.value.hint


def test_python_object_tag_is_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    text = BASE + f"seed: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(UserError, match=r"refused a YAML tag \(line 3\).*python/object") as info:
        load_config(_write(tmp_path, text))
    assert "safe_load" in info.value.hint
    assert not marker.exists()


def test_not_utf8_config(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_bytes(BASE.encode() + "name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        load_config(path)


def test_digest_is_stable_and_sensitive(tmp_path):
    a = load_config(_write(tmp_path, BASE))
    b = load_config(_write(tmp_path, BASE))
    c = load_config(_write(tmp_path, BASE + "points:\n  pdo: 40\n"))
    assert a.digest() == b.digest() != c.digest()


def test_shipped_configs_load():
    repo = Path(__file__).resolve().parents[1]
    for path in sorted((repo / "configs").glob("*.yaml")):
        cfg = load_config(path)
        assert cfg.model_name
        assert yaml.safe_load(path.read_text())  # plain data
