"""Checkpoint integrity (arch2vec_jax.checkpoint): checksums, fallback to the newest good file, temporaries."""

import hashlib
import json
import os
import pathlib

import flax.serialization
import numpy as np
import pytest

from arch2vec_jax import checkpoint as ckpt_lib


def _state(k):
  return {
    "params": {
      "w": np.arange(12.0, dtype=np.float32).reshape(3, 4) + k,
      "b": np.full(4, k, np.float32),
    },
    "step": np.int32(10 * k),
  }


def _save_three(directory):
  paths = [
    ckpt_lib.save_checkpoint(directory, _state(k), k, {"history": [k]}, keep=5) for k in range(3)
  ]
  return paths


def _restore(path):
  return ckpt_lib.restore_checkpoint(path, _state(0))


def test_roundtrip_with_checksum_trailer(tmp_path):
  path = ckpt_lib.save_checkpoint(tmp_path, _state(2), 2, {"history": [1, 2]})
  data = pathlib.Path(path).read_bytes()
  assert (
    data[-48:-32] == b"arch2vec-sha256\x00" and hashlib.sha256(data[:-48]).digest() == data[-32:]
  )
  state, epoch, extra = _restore(path)
  np.testing.assert_array_equal(state["params"]["w"], _state(2)["params"]["w"])
  assert epoch == 2 and extra == {"history": [1, 2]} and state["step"] == 20
  ckpt_lib.verify_checkpoint(path)
  assert ckpt_lib.load_raw(path)["epoch"] == 2


def _truncate(path):
  data = pathlib.Path(path).read_bytes()
  pathlib.Path(path).write_bytes(data[: len(data) // 2])


def _flip(path):
  data = bytearray(pathlib.Path(path).read_bytes())
  data[len(data) // 3] ^= 0x10  # inside the float32 values: still valid msgpack of the same size
  pathlib.Path(path).write_bytes(bytes(data))


@pytest.mark.parametrize(
  "damage, reason", [(_truncate, "cannot be decoded"), (_flip, "SHA-256 checksum mismatch")]
)
def test_damaged_newest_falls_back_to_the_newest_good_one(tmp_path, damage, reason):
  paths = _save_three(tmp_path)
  size = os.path.getsize(paths[-1])
  damage(paths[-1])
  if damage is _flip:
    assert os.path.getsize(paths[-1]) == size
  with pytest.raises(
    ckpt_lib.CheckpointError, match=rf"^{paths[-1]}: damaged checkpoint: {reason}"
  ):
    _restore(paths[-1])
  with pytest.raises(ckpt_lib.CheckpointError, match=rf"^{paths[-1]}: damaged checkpoint"):
    ckpt_lib.load_raw(paths[-1])
  warnings = []
  assert ckpt_lib.latest_checkpoint(tmp_path, verify=True, warn=warnings.append) == paths[1]
  assert len(warnings) == 1 and warnings[0].startswith(f"{paths[-1]}: damaged checkpoint: {reason}")
  assert "trying the next older checkpoint" in warnings[0]
  # The default report is a Python warning naming the file.
  with pytest.warns(UserWarning, match=rf"{os.path.basename(paths[-1])}: damaged checkpoint"):
    assert ckpt_lib.latest_checkpoint(tmp_path, verify=True) == paths[1]
  state, epoch, _ = _restore(ckpt_lib.latest_checkpoint(tmp_path, verify=True, warn=lambda _: None))
  assert epoch == 1 and state["step"] == 10
  # Without verify: the newest by name, as before.
  assert ckpt_lib.latest_checkpoint(tmp_path) == paths[-1]


def test_every_checkpoint_damaged(tmp_path):
  paths = _save_three(tmp_path)
  for p in paths:
    _flip(p)
  with pytest.raises(
    ckpt_lib.CheckpointError, match=rf"^{tmp_path}: every checkpoint is damaged: {paths[-1]}, "
  ):
    ckpt_lib.latest_checkpoint(tmp_path, verify=True, warn=lambda _: None)
  assert ckpt_lib.latest_checkpoint(tmp_path / "empty", verify=True) is None


def test_damaged_trailer_is_caught_by_the_decoder(tmp_path):
  path = ckpt_lib.save_checkpoint(tmp_path, _state(1), 1)
  data = bytearray(pathlib.Path(path).read_bytes())
  data[-40] ^= (
    0x01  # inside the magic: the file then looks unchecksummed, and msgpack finds extra bytes
  )
  pathlib.Path(path).write_bytes(bytes(data))
  with pytest.raises(
    ckpt_lib.CheckpointError, match=rf"^{path}: damaged checkpoint: cannot be decoded"
  ):
    _restore(path)


def test_orphan_temporaries_are_removed(tmp_path):
  _save_three(tmp_path)
  orphan = tmp_path / ".checkpoint_000003.msgpack.k2j4h1.tmp"  # as fileio.atomic_open names them
  orphan.write_bytes(b"half a checkpoint")
  other = tmp_path / ".notes.tmp"  # not a checkpoint temporary: left alone
  other.write_text("x")
  assert ckpt_lib.latest_checkpoint(tmp_path, verify=True).endswith("checkpoint_000002.msgpack")
  assert not orphan.exists() and other.exists()
  orphan.write_bytes(b"again")
  ckpt_lib.save_checkpoint(tmp_path, _state(3), 3, keep=5)
  assert not orphan.exists()
  assert sorted(os.listdir(tmp_path)) == [".notes.tmp"] + [
    f"checkpoint_{k:06d}.msgpack" for k in range(4)
  ]


def test_checkpoints_without_checksum_still_load(tmp_path):
  # The format written before checksums existed: the msgpack payload alone.
  payload = {
    "state": flax.serialization.to_state_dict(_state(4)),
    "epoch": 4,
    "extra": json.dumps({"history": [4]}),
  }
  old = tmp_path / "checkpoint_000004.msgpack"
  old.write_bytes(flax.serialization.msgpack_serialize(payload))
  state, epoch, extra = _restore(old)
  assert epoch == 4 and extra == {"history": [4]} and state["step"] == 40
  assert ckpt_lib.latest_checkpoint(tmp_path, verify=True) == str(old)
  # A truncated old-format file is still reported, naming it.
  old.write_bytes(old.read_bytes()[:-30])
  with pytest.raises(
    ckpt_lib.CheckpointError, match=rf"^{old}: damaged checkpoint: cannot be decoded"
  ):
    _restore(old)


def test_structure_mismatch_is_not_damage(tmp_path):
  path = ckpt_lib.save_checkpoint(tmp_path, _state(1), 1)
  with pytest.raises(ValueError, match="does not match the model/optimizer structure") as e:
    ckpt_lib.restore_checkpoint(path, {"other": np.zeros(3)})
  assert not isinstance(e.value, ckpt_lib.CheckpointError)


def test_pruning_touches_only_the_same_run(tmp_path):
  """Files of another run (or without a run id) survive; the run's own old files are pruned."""
  for k in (7, 8, 9):  # an older run's files, with higher epoch numbers
    ckpt_lib.save_checkpoint(tmp_path, _state(k), k, {"run": "old"}, keep=5, run_id="old")
  legacy = ckpt_lib.save_checkpoint(tmp_path, _state(5), 5, None, keep=10)  # no run id
  for k in range(3):
    ckpt_lib.save_checkpoint(tmp_path, _state(k), k, None, keep=2, run_id="new")
  runs = {e: ckpt_lib.checkpoint_run(p) for e, p in ckpt_lib.list_checkpoints(tmp_path)}
  assert runs == {1: "new", 2: "new", 5: None, 7: "old", 8: "old", 9: "old"}
  assert os.path.exists(legacy)
