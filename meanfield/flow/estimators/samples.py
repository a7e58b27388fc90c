"""Expectations over a fixed weighted sample set: E_x[g] = sum_k omega_k g(x_k).

The velocity of every particle is computed chunk by chunk over samples.  Two layers: one
compiled kernel per chunk (:func:`meanfield.kernels.tiled.two_layer_rows`).  Its usual
path keeps sigma and sigma' of every particle for the chunk (16 float64 rows, 32 float32
rows; :meth:`SampleExpectation._kept_rows`): register tiles give a few particles'
pre-activations at a time (8 with AVX-512, 2 with AVX2), activated in vectorized loops while in L1, and once the
residuals e_k = f(x_k) - y_k are known the velocities come from the kept values.  When the
kept values and a worker's velocity are too large for the cache (float64, many
particles), it works through blocks of particles whose (rows x block) pre-activations stay
in cache, BLAS products computing them twice, before and after the residuals.  Three
layers, memory O((N + n) d + chunk N) (chunks of at least MIN_CHUNK_ROWS rows): for each chunk of rows the pre-activations come
from one BLAS product, a fused compiled kernel evaluates the activations, the network
output, the residual and the backward factors in one sweep over the rows, and BLAS
products accumulate the velocities in place.

Two-layer velocities (v = -(1/p_i) dR/dtheta_i, data term only):

    v_a_i = -E[e sigma(z_i)]              z_i = <w_i, x> + b_i
    v_w_i = -E[e a_i sigma'(z_i) x]
    v_b_i = -E[e a_i sigma'(z_i)]

Three-layer (phi_i = sigma(<u_i, x> + c_i), g_j = e a_j sigma'(h_j)):

    v_a_j  = -E[e sigma(h_j)]             v_b_j = -E[g_j]
    v_W_ji = -E[g_j phi_i]                (the 1/(p_i q_j) scaling)
    v_u_i  = -E[(sum_j q_j g_j W_ji) sigma'(<u_i,x> + c_i) x],   v_c_i likewise without x
"""

import numpy as np

from meanfield.model import activations
from meanfield.kernels.blas import gemm_into
from meanfield.jit import num_threads, parallel_map, single_threaded_blas
from meanfield.kernels.elementwise import activate, multiply, readout_rows
from meanfield.kernels.register_tile import TILE_BYTES
from meanfield.kernels.tiled import scale_rows, two_layer_rows

DEFAULT_CHUNK_BYTES = 2 ** 24
MIN_CHUNK_ROWS = 16
TWO_LAYER_ROWS = 256          # two layers: rows per chunk and particles per block, so that
TWO_LAYER_BLOCK = 256         # the (rows x block) pre-activations stay in L2 (512 kB float64)
TWO_LAYER_KEPT_BYTES = TILE_BYTES  # kept sigma, sigma': one register tile's columns (16 float64, 32 float32)
TWO_LAYER_KEPT_CACHE = 2 ** 24  # float64 keeps while a worker's kept values and velocity fit in 16 MiB


class SampleExpectation:
    """Weighted samples (X, y, omega) for training and an independent evaluation set."""

    method = "samples"

    def __init__(self, X, y, weights=None, eval_X=None, eval_y=None, eval_weights=None,
                 chunk_bytes=DEFAULT_CHUNK_BYTES):
        self.X = np.ascontiguousarray(X)
        dtype = self.X.dtype
        self.y = np.ascontiguousarray(y, dtype=dtype)
        n = len(self.X)
        self.weights = (np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=float)).astype(dtype)
        if self.y.shape != (n,) or self.weights.shape != (n,):
            raise ValueError("samples: X, y and weights must have the same number of rows")
        if eval_X is None:
            eval_X, eval_y, eval_weights = self.X, self.y, self.weights
        self.eval_X = np.ascontiguousarray(eval_X, dtype=dtype)
        self.eval_y = np.asarray(eval_y, dtype=dtype)
        m = len(self.eval_X)
        self.eval_weights = (np.full(m, 1.0 / m) if eval_weights is None else np.asarray(eval_weights, dtype=float)).astype(dtype)
        self.chunk_bytes = int(chunk_bytes)
        self._buffers = {}

    @property
    def target_variance(self):
        """Var(y) under the training weights."""
        mean = self.weights @ self.y
        return float(self.weights @ (self.y - mean) ** 2)

    def loss(self, network, flat):
        """1/2 E[(f - y)^2] on the training set."""
        return _half_mean_square(network.output(flat, self.X) - self.y, self.weights)

    def test_loss(self, network, flat):
        """1/2 E[(f - y)^2] on the evaluation set."""
        return _half_mean_square(network.output(flat, self.eval_X) - self.eval_y, self.eval_weights)

    def velocity(self, network, flat, out):
        """Write -(1/mass) d(data risk)/dtheta into ``out``; return the data risk.

        The sample set is cut into chunks dealt round-robin to the worker threads; each
        worker accumulates into its own buffer (worker 0 into ``out``) and the buffers
        are added in worker order, so the result depends only on the thread count.
        """
        shared = self._shared(network, flat)
        n, workers = len(self.X), num_threads()
        if network.layers == 2:
            kept = self._kept_rows(network)
            shared["kept"] = kept > 0
            rows = kept or TWO_LAYER_ROWS
            rows = max(1, min(rows, -(-n // workers)))
            chunk, finish = self._two_layer_chunk, self._two_layer_finish
        else:
            columns = 3 * network.width1 + 2 * network.width2
            rows = max(1, min(self._rows_per_chunk(columns), -(-n // workers)))
            chunk, finish = self._three_layer_chunk, None
        starts = list(range(0, n, rows))
        workers = min(workers, len(starts))
        sinks = [out] + [self._workspace(w, "velocity", out.shape, out.dtype) for w in range(1, workers)]

        def work(w):
            sink = sinks[w]
            sink[:] = 0
            views = network.layout.unpack(sink)
            loss = sum(chunk(network, shared, views, w, start, min(start + rows, n), rows)
                       for start in starts[w::workers])
            if finish is not None:
                finish(network, shared, views, w)
            return loss

        with single_threaded_blas():
            losses = parallel_map(work, range(workers))
        for sink in sinks[1:]:
            out += sink
        return float(sum(losses))

    def _kept_rows(self, network):
        """Two layers: the rows per chunk whose sigma and sigma' of every particle are kept
        for the backward pass (TWO_LAYER_KEPT_BYTES / itemsize), or 0 to compute the
        pre-activations and activations again block by block.

        Keeping saves one product and one activation evaluation per (sample, particle)
        pair, and its forward pass runs on register tiles; it costs writing and re-reading
        the kept values (2 x rows x N per worker, within the memory budget) and a pass over
        the worker's whole first-layer velocity (N x d) per chunk of few rows.  Float32
        always keeps.  Float64 keeps while those, N (2 rows + d) 8 bytes, fit in
        TWO_LAYER_KEPT_CACHE: at d = 32, N = 2^15 (16 MiB) keeping took 523 ms (relu) and
        668 ms (tanh) against 610 and 791 recomputing; at N = 2^17, where the velocity and
        the kept values are far out of the last-level cache, relu took 2.85 s kept against
        2.44 s recomputed (tanh still 2.80 against 3.23).
        """
        itemsize = self.X.itemsize
        rows = TWO_LAYER_KEPT_BYTES // itemsize
        kept = 2 * rows * network.width * itemsize
        if kept > self.chunk_bytes:
            return 0
        if itemsize == 8 and kept + network.width * self.X.shape[1] * itemsize > TWO_LAYER_KEPT_CACHE:
            return 0
        return rows

    def _rows_per_chunk(self, columns):
        """Rows per chunk: the memory budget, but never fewer than MIN_CHUNK_ROWS (a chunk of
        a few rows turns the velocity product into rank-few updates of the whole (N, d)
        velocity, several times slower)."""
        rows = max(MIN_CHUNK_ROWS, self.chunk_bytes // (columns * self.X.itemsize))
        return int(min(len(self.X), rows))

    def _workspace(self, worker, name, shape, dtype):
        """A buffer owned by one worker, kept between calls."""
        key = (worker, name)
        buffer = self._buffers.get(key)
        if buffer is None or buffer.shape != tuple(shape) or buffer.dtype != dtype:
            buffer = self._buffers[key] = np.empty(shape, dtype=dtype)
        return buffer

    @staticmethod
    def _shared(net, flat):
        """Read-only per-evaluation arrays shared by the workers."""
        P = net.layout.unpack(flat)
        a = P["readout"]["weight"]
        shared = {"P": P, "code": activations.code(net.activation)}
        if net.layers == 2:
            shared["bias"] = P["layer1"]["bias"] if net.bias else np.zeros(net.width, dtype=flat.dtype)
            shared["coef"] = (net.p * a).astype(flat.dtype)
            return shared
        W = P["layer2"]["weight"]
        shared["bias1"] = P["layer1"]["bias"] if net.bias else np.zeros(net.width1, dtype=flat.dtype)
        shared["bias2"] = P["layer2"]["bias"] if net.bias else np.zeros(net.width2, dtype=flat.dtype)
        shared["coef"] = (net.q * a).astype(flat.dtype)
        shared["Wp"] = (W * net.p).astype(flat.dtype)            # p_i W_ji: forward
        shared["Wq"] = (W * net.q[:, None]).astype(flat.dtype)   # q_j W_ji: backward
        return shared

    def _two_layer_chunk(self, net, shared, V, worker, start, stop, rows):
        """Velocities of rows start:stop (see :func:`meanfield.kernels.tiled.two_layer_rows`);
        the first-layer velocities still lack the factor a_i (:meth:`_two_layer_finish`)."""
        P, dtype = shared["P"], self.X.dtype
        Xc, yc, wc = self.X[start:stop], self.y[start:stop], self.weights[start:stop]
        size = rows * (net.width if shared["kept"] else TWO_LAYER_BLOCK)
        S = self._workspace(worker, "sigma", (size,), dtype)
        D = self._workspace(worker, "sigma'", (size,), dtype)
        v_bias = V["layer1"]["bias"] if net.bias else self._workspace(worker, "no bias", (net.width,), dtype)
        e = two_layer_rows(Xc, yc, wc, P["layer1"]["weight"], shared["bias"], shared["coef"],
                           V["readout"]["weight"], V["layer1"]["weight"], v_bias, S, D, TWO_LAYER_BLOCK,
                           shared["code"])
        return _half_mean_square(e, wc)

    def _two_layer_finish(self, net, shared, V, worker):
        """Apply the readout factor a_i to a worker's first-layer velocities, once."""
        v_bias = V["layer1"]["bias"] if net.bias else self._workspace(worker, "no bias", (net.width,), self.X.dtype)
        scale_rows(V["layer1"]["weight"], v_bias, shared["P"]["readout"]["weight"])

    def _three_layer_chunk(self, net, shared, V, worker, start, stop, rows):
        P, dtype = shared["P"], self.X.dtype
        Xc, yc, wc = self.X[start:stop], self.y[start:stop], self.weights[start:stop]
        k, (m1, m2) = len(Xc), net.widths
        Phi = self._workspace(worker, "Phi", (rows, m1), dtype)[:k]
        D1 = self._workspace(worker, "D1", (rows, m1), dtype)[:k]
        B = self._workspace(worker, "B", (rows, m1), dtype)[:k]
        H = self._workspace(worker, "H", (rows, m2), dtype)[:k]
        G = self._workspace(worker, "G", (rows, m2), dtype)[:k]
        a = P["readout"]["weight"]
        v_bias2 = V["layer2"]["bias"] if net.bias else self._workspace(worker, "no bias", (m2,), dtype)
        gemm_into(1.0, Xc, P["layer1"]["weight"].T, 0.0, Phi)
        activate(Phi, D1, shared["bias1"], shared["code"])
        gemm_into(1.0, Phi, shared["Wp"].T, 0.0, H)
        e = readout_rows(H, G, shared["bias2"], shared["coef"], a, yc, wc, V["readout"]["weight"], v_bias2,
                         shared["code"])
        gemm_into(-1.0, G.T, Phi, 1.0, V["layer2"]["weight"])
        gemm_into(1.0, G, shared["Wq"], 0.0, B)
        multiply(B, D1)
        gemm_into(-1.0, B.T, Xc, 1.0, V["layer1"]["weight"])
        if net.bias:
            V["layer1"]["bias"] -= B.sum(axis=0)
        return _half_mean_square(e, wc)


def _half_mean_square(e, weights):
    return 0.5 * float(np.dot(weights.astype(np.float64), np.square(e, dtype=np.float64)))
