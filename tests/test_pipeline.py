"""The attack protocol (ntga.protocol) and the library pipeline (ntga.attacks.pipeline)."""

import dataclasses
import inspect
import json

import jax
import numpy as np
import pytest

from ntga import attacks, data, io
from ntga.attacks import pipeline
from ntga.errors import ConfigError, DataError
from ntga.protocol import AttackConfig, RunContext

# Settings small enough for 24 8x8 images in seconds.
_TINY = {
    "ntga": {"block_size": 12, "target_size": 12, "steps": 1},
    "cuda": {},
    "ops": {},
    "random": {},
    "em": {"max_rounds": 1, "train_steps": 1, "noise_steps": 1,
           "source_model": "groupnorm-cnn", "width": 4, "batch_size": 8},
    "rem": {"total_train_steps": 2, "adv_steps": 1, "noise_steps": 1,
            "eot_samples": 1, "source_model": "groupnorm-cnn", "width": 4,
            "batch_size": 8, "lr_decay_steps": 1},
}


def _data(n=24, c=1, k=3):
  rng = np.random.default_rng(0)
  x = rng.integers(0, 256, (n, 8, 8, c), dtype=np.uint8)
  return x, np.arange(n, dtype=np.int64) % k


@pytest.fixture(scope="module")
def digits():
  return data.load("digits", "train", limit=60)


# --- the protocol -------------------------------------------------------------------

def test_every_attack_has_the_protocol_signature():
  assert set(_TINY) == set(attacks.names())
  for name, atk in attacks.registry().items():
    params = list(inspect.signature(atk.poison).parameters.values())
    positional = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert positional == ["key", "x", "y", "config", "context"], name
    assert params[4].default == RunContext(), name
    assert not any(p.kind == p.VAR_KEYWORD for p in params), name
    assert issubclass(atk.config_cls, AttackConfig), name


@pytest.mark.parametrize("name", sorted(_TINY))
def test_every_attack_runs_with_a_context(name, tmp_path):
  atk = attacks.get(name)
  x, y = _data()
  config = atk.config_cls(**_TINY[name])
  context = RunContext(num_classes=3, checkpoint_dir=tmp_path / "ckpt",
                       progress=False)
  out = atk.poison(jax.random.key(1), x, y, config, context)
  assert isinstance(out, np.ndarray) and out.dtype == np.uint8
  assert out.shape == x.shape and (out != x).any()
  # The context says how to run, not what to compute.
  np.testing.assert_array_equal(
      atk.poison(jax.random.key(1), x, y, config, RunContext()), out)
  # Labels must lie below the context's class count, for every attack.
  with pytest.raises(DataError, match=r"\[0, 2\)"):
    atk.poison(jax.random.key(1), x, y, config, RunContext(num_classes=2))


@pytest.mark.parametrize("name", sorted(_TINY))
def test_resolved_fills_eps_for_grey_and_colour(name):
  cls = attacks.get(name).config_cls
  config = cls()
  fields = {f.name for f in dataclasses.fields(cls)}
  for shape in ((28, 28, 1), (32, 32, 3)):
    resolved = config.resolved(shape)
    assert type(resolved) is cls
    if "eps" not in fields:  # CUDA and OPS have no eps bound
      assert resolved == config
      continue
    assert isinstance(resolved.eps, float) and 0 < resolved.eps <= 1
    assert resolved.resolved(shape) == resolved
  if "eps" in fields and config.eps is None:  # NTGA: the paper's value per data
    assert config.resolved((28, 28, 1)).eps == 0.3
    assert config.resolved((32, 32, 3)).eps == 8 / 255


def test_only_the_config_class_says_what_differs():
  flags = {name: (atk.config_cls.secret_seed, atk.config_cls.multi_process)
           for name, atk in attacks.registry().items()}
  assert flags == {"ntga": (False, True), "cuda": (True, False),
                   "ops": (False, False), "em": (False, False),
                   "rem": (False, False), "random": (False, False)}
  # Class attributes, not settings: they never reach a manifest's config.
  assert "secret_seed" not in dataclasses.asdict(attacks.get("cuda").config_cls())


# --- build_config and the ratio subset ------------------------------------------------

def test_build_config():
  ntga = attacks.get("ntga")
  assert pipeline.build_config(ntga, {"steps": 3}, eps=0.2) == ntga.config_cls(
      steps=3, eps=0.2)
  with pytest.raises(ConfigError, match="unknown settings 'a', 'b' for attack "
                     "'ntga'; known: block_size, defense_aware, diag_reg"):
    pipeline.build_config(ntga, {"b": 1, "a": 2, "steps": 3})
  with pytest.raises(ConfigError, match="'cuda' has no eps bound"):
    pipeline.build_config(attacks.get("cuda"), {}, eps=0.1)
  with pytest.raises(ConfigError, match="eps"):
    pipeline.build_config(ntga, {}, eps=2.0)


def test_ratio_subset_is_the_seeded_stream():
  x, y = _data(n=40)
  xp = attacks.get("random").poison(jax.random.key(0), x, y, attacks.get("random").config_cls())
  out, mask = pipeline.ratio_subset(5, x, xp, 0.25)
  key = jax.random.fold_in(jax.random.key(5), pipeline.RATIO_STREAM)
  out2, mask2 = attacks.apply_ratio(key, x, xp, 0.25)
  np.testing.assert_array_equal(mask, mask2)
  np.testing.assert_array_equal(out, out2)
  assert mask.sum() == 10
  _, other = pipeline.ratio_subset(6, x, xp, 0.25)
  assert (other != mask).any()
  with pytest.raises(ConfigError, match="ratio"):
    pipeline.check_ratio(1.5)
  pipeline.check_ratio(None)


# --- poison_dataset and the manifest ---------------------------------------------------

_COMMON = {"attack", "config", "code_fingerprint", "psnr_db",
           "max_abs_delta_levels", "max_abs_delta", "versions"}


def test_manifest_keys(digits):
  atk = attacks.get("random")
  manifest, x = pipeline.poison_dataset(atk, atk.config_cls(mode="class"),
                                        digits, seed=4, progress=False)
  assert set(manifest) == _COMMON | {"seed"}
  assert manifest["attack"] == "random" and manifest["seed"] == 4
  assert manifest["config"] == {"eps": 8 / 255, "mode": "class", "batch_size": 4096}
  assert manifest["code_fingerprint"] == pipeline.code_fingerprint(atk)
  direct = atk.poison(jax.random.key(4), digits.x, digits.y,
                      atk.config_cls(mode="class"))
  np.testing.assert_array_equal(x, direct)
  assert manifest["max_abs_delta_levels"] == int(np.abs(x.astype(int) - digits.x).max())
  json.dumps(manifest)  # serialisable as it is


def test_manifest_of_a_secret_seed_and_a_ratio(digits):
  atk = attacks.get("cuda")
  manifest, x = pipeline.poison_dataset(atk, atk.config_cls(), digits, seed=4,
                                        ratio=0.5, progress=False, preset="paper")
  assert set(manifest) == _COMMON | {"seed_fingerprint", "ratio", "n_poisoned",
                                     "poisoned_rows", "preset"}
  assert "seed" not in manifest and manifest["preset"] == "paper"
  assert manifest["seed_fingerprint"] == attacks.key_fingerprint(jax.random.key(4))
  # The documented definition (ntga/io.py), recomputed by hand.
  import hashlib
  key_bytes = np.asarray(jax.random.key_data(jax.random.key(4))).tobytes()
  assert manifest["seed_fingerprint"] == hashlib.sha256(
      b"ntga-key:" + key_bytes).hexdigest()[:16]
  changed = np.flatnonzero((x != digits.x).any(axis=(1, 2, 3)))
  assert manifest["n_poisoned"] == 30 == len(changed)
  # The rows the ratio subset poisoned, which are the rows that changed.
  assert manifest["poisoned_rows"] == changed.tolist()
  _, mask = pipeline.ratio_subset(4, digits.x, x, 0.5)
  assert manifest["poisoned_rows"] == np.flatnonzero(mask).tolist()
  json.dumps(manifest)


def test_input_record_hashes_the_decoded_arrays(tmp_path, monkeypatch):
  """What the manifest's input hashes are, recomputed from the files."""
  import hashlib
  x, y = _data(n=6, c=3)
  np.savez(tmp_path / "in.npz", x=x, y=y)
  monkeypatch.chdir(tmp_path)
  ds = data.load("in.npz", limit=4)
  record = pipeline.input_record(ds, "in.npz", split="train", limit=4)
  again = data.load(str(tmp_path / "in.npz"), "train", limit=4)
  assert record == {
      "spec": str((tmp_path / "in.npz").resolve()), "split": "train", "limit": 4,
      "data_dir": None, "sha256_of": "decoded arrays",
      "sha256_x": hashlib.sha256(np.ascontiguousarray(again.x).tobytes()).hexdigest(),
      "sha256_y": hashlib.sha256(again.y.astype("<i8").tobytes()).hexdigest()}
  assert pipeline.input_record(ds, "digits")["spec"] == "digits"


def test_check_seed():
  pipeline.check_seed(0)
  pipeline.check_seed(2**32 - 1)
  # jax.random.key keeps 32 bits: 2**32 would run as seed 0.
  np.testing.assert_array_equal(jax.random.key_data(jax.random.key(2**40)),
                                jax.random.key_data(jax.random.key(0)))
  for bad in (-1, 2**32, 2**40, 1.5, True):
    with pytest.raises(ConfigError, match="--seed must be"):
      pipeline.check_seed(bad)
  with pytest.raises(ConfigError, match="--seed must be"):
    pipeline.poison_dataset(attacks.get("random"), attacks.get("random").config_cls(),
                            data.load("digits", limit=10), seed=2**32)


def test_manifest_config_is_resolved_and_checkpoints_go_under_out(digits, tmp_path):
  atk = attacks.get("ntga")
  config = atk.config_cls(**_TINY["ntga"])
  manifest, _ = pipeline.poison_dataset(atk, config, digits, seed=0,
                                        out=tmp_path, progress=False)
  assert (manifest["config"]["eps"], manifest["config"]["t"]) == (0.3, 64.0)
  ckpt = tmp_path / io.ATTACK_CHECKPOINTS
  assert len(list(ckpt.glob("block_*.npy"))) == 5  # ceil(60 / 12)
  (tmp_path / "train.npz").write_bytes(b"kept")
  pipeline.remove_checkpoints(tmp_path)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["train.npz"]


# --- code_fingerprint ------------------------------------------------------------------

def test_code_fingerprint_is_stable_and_per_attack():
  prints = {n: pipeline.code_fingerprint(a) for n, a in attacks.registry().items()}
  assert prints == {n: pipeline.code_fingerprint(a)
                    for n, a in attacks.registry().items()}
  assert all(len(p) == 16 and int(p, 16) >= 0 for p in prints.values())
  assert len(set(prints.values())) == len(prints) - 1  # em and rem share _minmin
  assert prints["em"] == prints["rem"]


def test_code_fingerprint_follows_imports():
  closure = pipeline._closure({"ntga.attacks.cuda"})  # pylint: disable=protected-access
  assert {"ntga.attacks.cuda", "ntga.attacks._common", "ntga.bounds", "ntga.errors",
          "ntga.protocol", "ntga.data"} <= set(closure)
  assert not {"ntga.attacks.ops", "ntga.attacks.registry", "ntga.pgd", "ntga.cli",
              "ntga.attacks.pipeline"} & set(closure)
  assert {"ntga.pgd", "ntga.predict", "ntga.surrogates", "ntga._cnn_kernel"} <= set(
      pipeline._closure({"ntga.pgd"}))  # pylint: disable=protected-access


def test_code_fingerprint_changes_with_the_source(monkeypatch):
  before = {n: pipeline.code_fingerprint(a) for n, a in attacks.registry().items()}
  real = pipeline._read_source  # pylint: disable=protected-access

  def edited(module):
    return real(module) + ("\n# a fix\n" if module == "ntga.attacks._common" else "")

  monkeypatch.setattr(pipeline, "_read_source", edited)
  after = {n: pipeline.code_fingerprint(a) for n, a in attacks.registry().items()}
  # Every attack built on attacks._common changes; NTGA (ntga core only) does not.
  assert after["ntga"] == before["ntga"]
  for name in ("cuda", "ops", "random", "em", "rem"):
    assert after[name] != before[name], name


def test_build_config_presets():
  """A preset's values, overridden by settings; unknown names are one-line errors."""
  em = attacks.get("em")
  cpu = pipeline.build_config(em, {"eps": 4 / 255}, preset="cpu")
  assert cpu == attacks.em.EMConfig.cpu(eps=4 / 255)
  assert pipeline.build_config(em, {}) == attacks.em.EMConfig()
  with pytest.raises(ConfigError, match="unknown preset 'gpu' for attack 'em'; "
                     "known: paper, cpu$"):
    pipeline.build_config(em, {}, preset="gpu")
  with pytest.raises(ConfigError, match=r"unknown preset 'cpu' for attack 'ops'; known: "
                     r"paper \(attacks with a 'cpu' preset: em, rem\)$"):
    pipeline.build_config(attacks.get("ops"), {}, preset="cpu")
