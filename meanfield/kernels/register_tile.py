"""A register-blocked product tile in explicit SIMD vectors, for compiled kernels.

    Z[p, k] = sum_c W[i + p, c] XT[c, k]        p < particles, k < TILE_BYTES / itemsize

XT (d, columns) holds the columns of a chunk as two 64-byte vectors per row (16 float64
or 32 float32 columns); W (b, d) the particles' rows.  For each c in order the tile adds
W[i + p, c] (broadcast) times the two vectors of XT[c] to 2 x particles accumulators with
fused multiply-adds, so every entry is the sum over c in order, rounded once per term, the
same bits whatever the machine's vector width or the number of particles per tile.  The
accumulators stay in registers (16 of the 32 AVX-512 registers for 8 particles, 8 of
AVX2's 16 for 2), which LLVM's own vectorizer does not achieve from loops over arrays:
at d = 32 the 8-particle tile ran at 83-96 GFLOP/s (float64) and 135-195 (float32) on
one core of the measured machine (AVX-512), OpenBLAS's gemm (Haswell kernel) at 41-42
and 105 for the same (8192 x 32) x (32 x 16 or 32) product; compiled for AVX2 only, the
2-particle tile ran at 49 GFLOP/s (float64) against OpenBLAS's 39.  Written as LLVM IR:
vectors of 64 bytes, legalized by LLVM into the machine's own (two AVX2 registers each,
say).  ``add_weighted_rows`` adds such a tile's activations, weighted, to the float64
network outputs of its columns in the same way, the outputs held in registers.
"""

import llvmlite.binding as llvm
import numba
from llvmlite import ir
from numba import types

from meanfield.jit import kernel
from numba.core.errors import TypingError
from numba.extending import intrinsic

TILE_BYTES = 128          # columns per tile: two 64-byte vectors
VECTOR_BYTES = 64
_INT64 = ir.IntType(64)


def _vector_type(dtype):
    """(LLVM element type, its bytes) of a numba float dtype."""
    if dtype == types.float64:
        return ir.DoubleType(), 8
    if dtype == types.float32:
        return ir.FloatType(), 4
    raise TypingError(f"register tile: float64 or float32 arrays, not {dtype}")


def _fma(builder, vector):
    """The llvm.fma intrinsic of a vector type, declared once per module."""
    name = f"llvm.fma.v{vector.count}{'f64' if vector.element == ir.DoubleType() else 'f32'}"
    return builder.module.globals.get(name) or ir.Function(builder.module, ir.FunctionType(vector, [vector] * 3), name)


def _splat(builder, scalar, vector):
    """``scalar`` in every lane of ``vector``'s type."""
    single = builder.insert_element(ir.Constant(vector, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0))
    mask = ir.Constant(ir.VectorType(ir.IntType(32), vector.count), [0] * vector.count)
    return builder.shuffle_vector(single, ir.Constant(vector, ir.Undefined), mask)


def _vector_pointer(builder, data, index, vector):
    """A pointer to the vector of ``vector``'s type at element ``index`` of ``data``."""
    return builder.bitcast(builder.gep(data, [index]), vector.as_pointer())


def _accumulating_loop(builder, trips, initial, body, name):
    """Emit ``for t in range(trips): sums = body(t, sums)`` with the sums in registers
    (phi nodes) and return the final sums (``initial`` when trips <= 0)."""
    entry = builder.block
    loop = builder.append_basic_block(f"{name}.loop")
    done = builder.append_basic_block(f"{name}.done")
    builder.cbranch(builder.icmp_signed(">", trips, ir.Constant(_INT64, 0)), loop, done)
    builder.position_at_end(loop)
    t = builder.phi(_INT64)
    t.add_incoming(ir.Constant(_INT64, 0), entry)
    sums = [builder.phi(value.type) for value in initial]
    for phi, value in zip(sums, initial):
        phi.add_incoming(value, entry)
    updated = body(t, sums)
    following = builder.add(t, ir.Constant(_INT64, 1))
    body_end = builder.block
    t.add_incoming(following, body_end)
    for phi, value in zip(sums, updated):
        phi.add_incoming(value, body_end)
    builder.cbranch(builder.icmp_signed("<", following, trips), loop, done)
    builder.position_at_end(done)
    results = [builder.phi(value.type) for value in initial]
    for result, first, last in zip(results, initial, updated):
        result.add_incoming(first, entry)
        result.add_incoming(last, body_end)
    return results


def _tile(particles):
    """The intrinsic tile(XT, W, Z, i): Z[:particles] = W[i:i + particles] @ XT."""

    @intrinsic
    def tile(typingctx, XT, W, Z, i):
        if not (XT.dtype == W.dtype == Z.dtype):
            raise TypingError("register tile: XT, W and Z must have one dtype")
        if not (XT.ndim == W.ndim == Z.ndim == 2 and XT.layout == W.layout == Z.layout == "C"):
            raise TypingError("register tile: XT, W and Z must be C-contiguous matrices")
        element, itemsize = _vector_type(XT.dtype)
        lanes = VECTOR_BYTES // itemsize
        vector = ir.VectorType(element, lanes)
        count = TILE_BYTES // VECTOR_BYTES

        def codegen(context, builder, signature, args):
            xt, w, z = (context.make_array(ty)(context, builder, value)
                        for ty, value in zip(signature.args[:3], args[:3]))
            first = context.cast(builder, args[3], signature.args[3], types.int64)
            d = builder.extract_value(w.shape, 1)
            fma = _fma(builder, vector)

            def step(c, sums):
                row = builder.mul(c, ir.Constant(_INT64, lanes * count))
                columns = [builder.load(_vector_pointer(builder, xt.data, builder.add(row, ir.Constant(_INT64, v * lanes)),
                                                        vector), align=itemsize)
                           for v in range(count)]
                updated = []
                for p in range(particles):
                    at = builder.add(builder.mul(builder.add(first, ir.Constant(_INT64, p)), d), c)
                    weight = _splat(builder, builder.load(builder.gep(w.data, [at])), vector)
                    updated.extend(builder.call(fma, [weight, columns[v], sums[p * count + v]]) for v in range(count))
                return updated

            zero = ir.Constant(vector, [0.0] * lanes)
            results = _accumulating_loop(builder, d, [zero] * (particles * count), step, "tile")
            for index, result in enumerate(results):
                builder.store(result, _vector_pointer(builder, z.data, ir.Constant(_INT64, index * lanes), vector),
                              align=itemsize)
            return context.get_dummy_value()

        return types.void(XT, W, Z, i), codegen

    return tile


def compiled_target():
    """(CPU name, set of enabled features) that compiled code is built for: numba's
    NUMBA_CPU_NAME and NUMBA_CPU_FEATURES when set, else the host's."""
    features = numba.config.CPU_FEATURES or llvm.get_host_cpu_features().flatten()
    return (numba.config.CPU_NAME or llvm.get_host_cpu_name(),
            {feature[1:] for feature in features.split(",") if feature.startswith("+")})


# particles per tile: their 2 x particles accumulators must stay in registers; 8 with
# 32 registers of 64 bytes (AVX-512), 2 with 16 of 32 bytes (AVX2, where 8 spill: 32
# against OpenBLAS's 43 GFLOP/s, and 2 give 49).  Each entry is the same in-order sum
# whatever the count, so the choice changes the speed, not the numbers.
TILE_PARTICLES = 8 if "avx512f" in compiled_target()[1] else 2
tile = _tile(TILE_PARTICLES)
"""tile(XT, W, Z, i): Z[:P] = W[i:i + P] @ XT, P = TILE_PARTICLES (XT (d, TILE_BYTES / itemsize), Z (P, same), contiguous)."""
tile_one = _tile(1)
"""tile_one(XT, W, Z, i): Z[:1] = W[i:i + 1] @ XT, for the particles left over by :data:`tile`."""


@kernel(inline=True)
def tile_rows(XT, W, Z, i, count):
    """Z[:count] = W[i:i + count] @ XT for count <= TILE_PARTICLES: one :data:`tile`, or
    ``count`` of :data:`tile_one` for the particles left at the end."""
    if count == TILE_PARTICLES:
        tile(XT, W, Z, i)
    else:
        for p in range(count):
            tile_one(XT, W, Z[p:p + 1], i + p)


@intrinsic
def add_weighted_rows(typingctx, S, coef, first, f):
    """add_weighted_rows(S, coef, first, f): f[k] += coef[first + p] S[p, k] in float64, for
    p = 0, 1, ... in order (one fused multiply-add each) and k < TILE_BYTES / itemsize, the
    length of S's rows and of f; S (particles, columns) C-contiguous, coef of S's dtype, f
    float64.  Straight vector code over the columns held in registers: the loop over
    particles is the only loop."""
    if not (S.dtype == coef.dtype and f.dtype == types.float64 and S.ndim == 2 and S.layout == "C"
            and coef.ndim == 1 and f.ndim == 1 and f.layout == "C"):
        raise TypingError("add_weighted_rows: S (C-contiguous matrix) and coef of one float dtype, f float64")
    element, itemsize = _vector_type(S.dtype)
    lanes = VECTOR_BYTES // 8                      # float64 lanes of a 64-byte vector
    groups = TILE_BYTES // itemsize // lanes
    wide = ir.VectorType(ir.DoubleType(), lanes)
    narrow = ir.VectorType(element, lanes)

    def codegen(context, builder, signature, args):
        s, c, out = (context.make_array(ty)(context, builder, value)
                     for ty, value in ((signature.args[0], args[0]), (signature.args[1], args[1]),
                                       (signature.args[3], args[3])))
        start = context.cast(builder, args[2], signature.args[2], types.int64)
        particles = builder.extract_value(s.shape, 0)
        row_length = builder.extract_value(s.shape, 1)
        fma = _fma(builder, wide)

        def step(p, sums):
            weight = builder.load(builder.gep(c.data, [builder.add(start, p)]))
            if element != ir.DoubleType():
                weight = builder.fpext(weight, ir.DoubleType())
            weight = _splat(builder, weight, wide)
            row = builder.mul(p, row_length)
            updated = []
            for g in range(groups):
                values = builder.load(_vector_pointer(builder, s.data, builder.add(row, ir.Constant(_INT64, g * lanes)),
                                                      narrow), align=itemsize)
                if element != ir.DoubleType():
                    values = builder.fpext(values, wide)
                updated.append(builder.call(fma, [weight, values, sums[g]]))
            return updated

        outputs = [_vector_pointer(builder, out.data, ir.Constant(_INT64, g * lanes), wide) for g in range(groups)]
        initial = [builder.load(pointer, align=8) for pointer in outputs]
        for pointer, result in zip(outputs, _accumulating_loop(builder, particles, initial, step, "weighted")):
            builder.store(result, pointer, align=8)
        return context.get_dummy_value()

    return types.void(S, coef, first, f), codegen
