"""What tests and benchmarks share: the lake configuration builder (`lake`), the Prefect environment
(`prefect_env`) and the spawner of `gdpr-sweep` processes and its HTTP server (`procs`).

Nothing here imports pytest, so the benchmarks (bench/) use the same code without the test runner.
"""
