"""machine.cpu_isa: the instruction set a results JSON records (CPU flags and XLA's cap)."""

from arch2vec_jax import machine


def test_cpu_isa_from_flags_and_cap():
  avx512 = "fpu sse4_2 avx avx2 avx512f avx512dq"
  avx2 = "fpu sse4_2 avx avx2 fma"
  assert machine.cpu_isa("", avx512) == {
    "cpu": "AVX-512",
    "xla_cpu_max_isa": None,
    "effective": "AVX-512",
  }
  assert machine.cpu_isa("--xla_cpu_max_isa=AVX2", avx512)["effective"] == "AVX2"
  assert machine.cpu_isa("--foo --xla_cpu_max_isa=avx2", avx512)["xla_cpu_max_isa"] == "avx2"
  assert (
    machine.cpu_isa("--xla_cpu_max_isa=AVX512", avx2)["effective"] == "AVX2"
  )  # a cap above the CPU
  assert machine.cpu_isa("", "fpu sse4_2") == {
    "cpu": "SSE4.2",
    "xla_cpu_max_isa": None,
    "effective": "SSE4.2",
  }
  assert machine.cpu_isa("", "") == {"cpu": None, "xla_cpu_max_isa": None, "effective": None}
  # The last --xla_cpu_max_isa wins, as in XLA's flag parsing.
  assert (
    machine.cpu_isa("--xla_cpu_max_isa=AVX512 --xla_cpu_max_isa=AVX", avx512)["effective"] == "AVX"
  )


def test_machine_info_records_the_isa():
  info = machine.machine_info()
  assert set(info["cpu_isa"]) == {"cpu", "xla_cpu_max_isa", "effective"}
  assert info["jax"] and info["backend"] and "load_average" in info
