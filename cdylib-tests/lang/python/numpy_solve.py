# Run natively and under LD_PRELOAD=libgreenify.so by cdylib-tests/tests/languages.rs, with
# OPENBLAS_NUM_THREADS=2: OpenBLAS's own worker thread helps factor a 500x500 system (the
# caller waits for it by spinning on a flag). Prints only rounded figures, so both runs match.
import numpy as np

N = 500
print(f"n: {N}", flush=True)   # a run killed on a hang shows how far it got
rng = np.random.default_rng(12345)
a = rng.standard_normal((N, N)) + N * np.eye(N)   # diagonally dominant: well conditioned
x_true = np.arange(1, N + 1, dtype=np.float64) / N
b = a @ x_true
x = np.linalg.solve(a, b)
print(f"max error below 1e-9: {bool(np.max(np.abs(x - x_true)) < 1e-9)}")
print(f"checksum: {np.sum(x):.6f}")
c = a @ a.T   # a matrix product (dgemm) on the same threads
print(f"trace of a a^T: {np.trace(c):.3e}")
print("done")
