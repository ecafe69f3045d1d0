// One-pass CPU kernels of the spiking core: the orthogonal LIF (OLIF) and the
// multi-step LIF / parametric LIF. Built and loaded by restoration/spiking/cpu_kernels.py
// (through host_kernels.compile_library); the Python side owns the autograd glue.
//
// Both follow one pattern: the forward reads x and writes the output (nothing else is
// saved); the backward reads x and the incoming gradient, recomputes the membrane
// potentials of a small block in a buffer that stays in L1, and walks it backwards.
// Work is laid out as "lanes": independent recurrences side by side in memory, so the
// innermost loops run over lanes and vectorise.
//
// Equality with the torch paths: every forward value is computed with the same IEEE
// operations in the same order as the reference (the build passes -ffp-contract=off so
// that no a*b+c becomes a fused multiply-add), so outputs and spikes are bit-identical.
// Gradients follow the same rules; they differ from autograd's only by rounding.
//
// Threads: std::thread over contiguous chunks, not OpenMP: torch runs its own OpenMP
// runtime, and a second one (the system libgomp) keeps its idle threads spinning,
// which on a machine with two shared cores costs more than a thread start (~20 us).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <thread>
#include <vector>

typedef long long i64;

namespace {

template <class F>
void parallel_chunks(i64 n, int threads, i64 min_per_thread, F fn) {
    // fn(begin, end, k): thread k of K takes the k-th contiguous chunk of [0, n).
    i64 most = std::max<i64>(1, n / std::max<i64>(1, min_per_thread));
    int K = (int)std::max<i64>(1, std::min<i64>(threads, most));
    if (K <= 1) {
        fn(0, n, 0);
        return;
    }
    std::vector<std::thread> pool;
    pool.reserve(K - 1);
    for (int k = 1; k < K; ++k) pool.emplace_back(fn, n * k / K, n * (k + 1) / K, k);
    fn(0, n / K, 0);
    for (auto& t : pool) t.join();
}

const i64 OLIF_LANES = 256;  // lanes per block: lif x 256 values of the buffer stay in L1

// ---- OLIF ----------------------------------------------------------------------------
// Lanes: x[j * stride + i] is step j of lane i. Reference (restoration/spiking/olif.py):
//   u_0 = x_0; u_j = tau * o_j + x_j; s_j = u_j > vth; y_j = max(u_j, vth); o_{j+1} = s_j ? 0 : u_j

template <class T>
void olif_fwd_lanes(const T* __restrict__ x, T* __restrict__ y, i64 stride, int lif, i64 nl, T tau, T vth,
                    T* __restrict__ carried) {
    for (i64 i = 0; i < nl; ++i) {
        const T u = x[i];
        y[i] = u < vth ? vth : u;  // clamp_min: keeps a NaN as torch does
        carried[i] = u > vth ? T(0) : u;
    }
    for (int j = 1; j < lif; ++j) {
        const T* xj = x + j * stride;
        T* yj = y + j * stride;
        for (i64 i = 0; i < nl; ++i) {
            const T u = tau * carried[i] + xj[i];
            yj[i] = u < vth ? vth : u;
            carried[i] = u > vth ? T(0) : u;
        }
    }
}

// Backward (the rules of the CUDA kernel): a_j = g_j if s_j else tau * a_{j+1}; dx_j = a_j;
// dvth += g_j and dtau += a_{j+1} * u_j over the non-spiking j. Any lif: u of the group in ubuf
// (lif * nl), lane arrays adj, acc_tau, acc_vth (nl each); sums added into d_tau, d_vth per lane.
template <class T>
void olif_bwd_lanes(const T* __restrict__ x, const T* __restrict__ g, T* __restrict__ dx, i64 stride, int lif,
                    i64 nl, T tau, T vth, T* __restrict__ ubuf, T* __restrict__ adj, T* __restrict__ acc_tau,
                    T* __restrict__ acc_vth, double* __restrict__ d_tau, double* __restrict__ d_vth) {
    for (i64 i = 0; i < nl; ++i) {
        const T u = x[i];
        ubuf[i] = u;
        adj[i] = u > vth ? T(0) : u;  // adj holds o_j during the recomputation
    }
    for (int j = 1; j < lif; ++j) {
        const T* xj = x + j * stride;
        T* uj = ubuf + j * nl;
        for (i64 i = 0; i < nl; ++i) {
            const T u = tau * adj[i] + xj[i];
            uj[i] = u;
            adj[i] = u > vth ? T(0) : u;
        }
    }
    for (i64 i = 0; i < nl; ++i) adj[i] = acc_tau[i] = acc_vth[i] = T(0);
    for (int j = lif - 1; j >= 0; --j) {
        const T* uj = ubuf + j * nl;
        const T* gj = g + j * stride;
        T* dxj = dx + j * stride;
        for (i64 i = 0; i < nl; ++i) {
            const T u = uj[i], gv = gj[i], a_next = adj[i];
            const bool s = u > vth;
            const T p = a_next * u, q = tau * a_next;
            acc_tau[i] += s ? T(0) : p;
            acc_vth[i] += s ? T(0) : gv;
            const T a = s ? gv : q;
            adj[i] = a;
            dxj[i] = a;
        }
    }
    for (i64 i = 0; i < nl; ++i) {  // per-lane float64 accumulators: no reduction chain here
        d_tau[i] += acc_tau[i];
        d_vth[i] += acc_vth[i];
    }
}

// The same two, with lif known at compile time: a whole group stays in registers (no
// buffer traffic), which is what brings the backward near the memory floor.
// GROUPED: the group's steps are adjacent in memory (dim=3: element (lane i, step j) at
// i * LIF + j, read without a transpose); otherwise at j * stride + i (dim=2).
#define OLIF_AT(j, i) (GROUPED ? (i) * LIF + (j) : (j) * stride + (i))
template <class T, int LIF, bool GROUPED>
void olif_fwd_fixed(const T* __restrict__ x, T* __restrict__ y, i64 stride, i64 nl, T tau, T vth) {
    for (i64 i = 0; i < nl; ++i) {
        T carried = T(0);
        for (int j = 0; j < LIF; ++j) {
            const T xv = x[OLIF_AT(j, i)];
            const T u = j == 0 ? xv : tau * carried + xv;
            y[OLIF_AT(j, i)] = u < vth ? vth : u;
            carried = u > vth ? T(0) : u;
        }
    }
}

template <class T, int LIF, bool GROUPED>
void olif_bwd_fixed(const T* __restrict__ x, const T* __restrict__ g, T* __restrict__ dx, i64 stride, i64 nl,
                    T tau, T vth, double* __restrict__ d_tau, double* __restrict__ d_vth) {
    for (i64 i = 0; i < nl; ++i) {
        T u[LIF];
        T carried = T(0);
        for (int j = 0; j < LIF; ++j) {
            const T xv = x[OLIF_AT(j, i)];
            u[j] = j == 0 ? xv : tau * carried + xv;
            carried = u[j] > vth ? T(0) : u[j];
        }
        T adj = T(0), acc_tau = T(0), acc_vth = T(0);
        for (int j = LIF - 1; j >= 0; --j) {
            const T gv = g[OLIF_AT(j, i)];
            const bool s = u[j] > vth;
            acc_tau += s ? T(0) : adj * u[j];
            acc_vth += s ? T(0) : gv;
            adj = s ? gv : tau * adj;
            dx[OLIF_AT(j, i)] = adj;
        }
        d_tau[i] += acc_tau;
        d_vth[i] += acc_vth;
    }
}

template <class T>
void olif_fwd_any(const T* x, T* y, i64 stride, int lif, i64 nl, T tau, T vth, T* carried) {
    switch (lif) {
        case 2: return olif_fwd_fixed<T, 2, false>(x, y, stride, nl, tau, vth);
        case 4: return olif_fwd_fixed<T, 4, false>(x, y, stride, nl, tau, vth);
        case 8: return olif_fwd_fixed<T, 8, false>(x, y, stride, nl, tau, vth);
        default: return olif_fwd_lanes(x, y, stride, lif, nl, tau, vth, carried);
    }
}

template <class T>
void olif_bwd_any(const T* x, const T* g, T* dx, i64 stride, int lif, i64 nl, T tau, T vth, T* ubuf, T* adj,
                  T* acc_tau, T* acc_vth, double* d_tau, double* d_vth) {
    switch (lif) {
        case 2: return olif_bwd_fixed<T, 2, false>(x, g, dx, stride, nl, tau, vth, d_tau, d_vth);
        case 4: return olif_bwd_fixed<T, 4, false>(x, g, dx, stride, nl, tau, vth, d_tau, d_vth);
        case 8: return olif_bwd_fixed<T, 8, false>(x, g, dx, stride, nl, tau, vth, d_tau, d_vth);
        default: return olif_bwd_lanes(x, g, dx, stride, lif, nl, tau, vth, ubuf, adj, acc_tau, acc_vth, d_tau, d_vth);
    }
}

template <class T>
bool olif_fwd_grouped(const T* x, T* y, int lif, i64 nl, T tau, T vth) {
    switch (lif) {
        case 2: olif_fwd_fixed<T, 2, true>(x, y, 0, nl, tau, vth); return true;
        case 4: olif_fwd_fixed<T, 4, true>(x, y, 0, nl, tau, vth); return true;
        case 8: olif_fwd_fixed<T, 8, true>(x, y, 0, nl, tau, vth); return true;
        default: return false;
    }
}

template <class T>
bool olif_bwd_grouped(const T* x, const T* g, T* dx, int lif, i64 nl, T tau, T vth, double* d_tau, double* d_vth) {
    switch (lif) {
        case 2: olif_bwd_fixed<T, 2, true>(x, g, dx, 0, nl, tau, vth, d_tau, d_vth); return true;
        case 4: olif_bwd_fixed<T, 4, true>(x, g, dx, 0, nl, tau, vth, d_tau, d_vth); return true;
        case 8: olif_bwd_fixed<T, 8, true>(x, g, dx, 0, nl, tau, vth, d_tau, d_vth); return true;
        default: return false;
    }
}

// Group-major <-> lane-major copies for dim=3: src[i * lif + j] <-> dst[j * ld + i]. A
// compile-time lif lets the compiler turn the strided side into vector shuffles.
template <class T, int LIF>
void to_lanes(const T* __restrict__ src, T* __restrict__ dst, i64 ld, int lif_rt, i64 nl) {
    const int lif = LIF ? LIF : lif_rt;
    for (int j = 0; j < lif; ++j)
        for (i64 i = 0; i < nl; ++i) dst[j * ld + i] = src[i * lif + j];
}

template <class T, int LIF>
void from_lanes(const T* __restrict__ src, T* __restrict__ dst, i64 ld, int lif_rt, i64 nl) {
    const int lif = LIF ? LIF : lif_rt;
    for (i64 i = 0; i < nl; ++i)
        for (int j = 0; j < lif; ++j) dst[i * lif + j] = src[j * ld + i];
}

template <class T>
void to_lanes_any(const T* src, T* dst, i64 ld, int lif, i64 nl) {
    switch (lif) {
        case 2: return to_lanes<T, 2>(src, dst, ld, lif, nl);
        case 4: return to_lanes<T, 4>(src, dst, ld, lif, nl);
        case 8: return to_lanes<T, 8>(src, dst, ld, lif, nl);
        default: return to_lanes<T, 0>(src, dst, ld, lif, nl);
    }
}

template <class T>
void from_lanes_any(const T* src, T* dst, i64 ld, int lif, i64 nl) {
    switch (lif) {
        case 2: return from_lanes<T, 2>(src, dst, ld, lif, nl);
        case 4: return from_lanes<T, 4>(src, dst, ld, lif, nl);
        case 8: return from_lanes<T, 8>(src, dst, ld, lif, nl);
        default: return from_lanes<T, 0>(src, dst, ld, lif, nl);
    }
}

// dim=2 (along H): the tensor is (outer, axis, inner) with inner = W; a unit is one
// (outer, group) pair, its lanes are the W columns (stride inner). Unit index `groups`
// of each outer slice copies the remainder rows.
// dim=3 (along W): a unit is one row of W; its groups are transposed into a lane buffer
// (lane = group, stride OLIF_LANES), computed, and transposed back.

template <class T>
void olif_forward(const T* x, T* y, i64 outer, i64 axis_len, i64 inner, int lif, int dim, double tau_d,
                  double vth_d, int threads) {
    const T tau = (T)tau_d, vth = (T)vth_d;
    const i64 groups = axis_len / lif, full = groups * lif, rest = axis_len - full;
    if (dim == 2) {
        const i64 per_outer = groups + (rest ? 1 : 0);
        parallel_chunks(outer * per_outer, threads, std::max<i64>(1, 16384 / std::max<i64>(1, lif * inner)),
                        [&](i64 b, i64 e, int) {
            std::vector<T> carried(OLIF_LANES);
            for (i64 unit = b; unit < e; ++unit) {
                const i64 o = unit / per_outer, gi = unit % per_outer;
                const i64 base = (o * axis_len + gi * lif) * inner;
                if (gi == groups) {
                    std::memcpy(y + base, x + base, sizeof(T) * rest * inner);
                    continue;
                }
                for (i64 i0 = 0; i0 < inner; i0 += OLIF_LANES) {
                    const i64 nl = std::min(OLIF_LANES, inner - i0);
                    // row by row (the potential carried in an L1 array): measured faster here than
                    // the register version, which streams lif rows at once
                    olif_fwd_lanes(x + base + i0, y + base + i0, inner, lif, nl, tau, vth, carried.data());
                }
            }
        });
    } else {
        parallel_chunks(outer, threads, std::max<i64>(1, 16384 / std::max<i64>(1, axis_len)), [&](i64 b, i64 e, int) {
            std::vector<T> xb(lif * OLIF_LANES), yb(lif * OLIF_LANES), carried(OLIF_LANES);
            for (i64 row = b; row < e; ++row) {
                const T* xr = x + row * axis_len;
                T* yr = y + row * axis_len;
                for (i64 g0 = 0; g0 < groups; g0 += OLIF_LANES) {
                    const i64 nl = std::min(OLIF_LANES, groups - g0);
                    if (olif_fwd_grouped(xr + g0 * lif, yr + g0 * lif, lif, nl, tau, vth)) continue;
                    to_lanes_any(xr + g0 * lif, xb.data(), OLIF_LANES, lif, nl);
                    olif_fwd_any(xb.data(), yb.data(), OLIF_LANES, lif, nl, tau, vth, carried.data());
                    from_lanes_any(yb.data(), yr + g0 * lif, OLIF_LANES, lif, nl);
                }
                if (rest) std::memcpy(yr + full, xr + full, sizeof(T) * rest);
            }
        });
    }
}

template <class T>
void olif_backward(const T* x, const T* g, T* dx, double* part_tau, double* part_vth, i64 outer, i64 axis_len,
                   i64 inner, int lif, int dim, double tau_d, double vth_d, int threads) {
    const T tau = (T)tau_d, vth = (T)vth_d;
    const i64 groups = axis_len / lif, full = groups * lif, rest = axis_len - full;
    if (dim == 2) {
        const i64 per_outer = groups + (rest ? 1 : 0);
        parallel_chunks(outer * per_outer, threads, std::max<i64>(1, 16384 / std::max<i64>(1, lif * inner)),
                        [&](i64 b, i64 e, int k) {
            std::vector<T> ubuf(lif * OLIF_LANES), work(3 * OLIF_LANES);
            std::vector<double> dt(OLIF_LANES), dv(OLIF_LANES);
            for (i64 unit = b; unit < e; ++unit) {
                const i64 o = unit / per_outer, gi = unit % per_outer;
                const i64 base = (o * axis_len + gi * lif) * inner;
                if (gi == groups) {
                    std::memcpy(dx + base, g + base, sizeof(T) * rest * inner);
                    continue;
                }
                for (i64 i0 = 0; i0 < inner; i0 += OLIF_LANES) {
                    const i64 nl = std::min(OLIF_LANES, inner - i0);
                    olif_bwd_any(x + base + i0, g + base + i0, dx + base + i0, inner, lif, nl, tau, vth,
                                   ubuf.data(), work.data(), work.data() + OLIF_LANES,
                                   work.data() + 2 * OLIF_LANES, dt.data(), dv.data());
                }
            }
            part_tau[k] = std::accumulate(dt.begin(), dt.end(), 0.0);
            part_vth[k] = std::accumulate(dv.begin(), dv.end(), 0.0);
        });
    } else {
        parallel_chunks(outer, threads, std::max<i64>(1, 16384 / std::max<i64>(1, axis_len)),
                        [&](i64 b, i64 e, int k) {
            std::vector<T> xb(lif * OLIF_LANES), gb(lif * OLIF_LANES), db(lif * OLIF_LANES);
            std::vector<T> ubuf(lif * OLIF_LANES), work(3 * OLIF_LANES);
            std::vector<double> dt(OLIF_LANES), dv(OLIF_LANES);
            for (i64 row = b; row < e; ++row) {
                const i64 off = row * axis_len;
                for (i64 g0 = 0; g0 < groups; g0 += OLIF_LANES) {
                    const i64 nl = std::min(OLIF_LANES, groups - g0);
                    if (olif_bwd_grouped(x + off + g0 * lif, g + off + g0 * lif, dx + off + g0 * lif, lif, nl, tau,
                                         vth, dt.data(), dv.data()))
                        continue;
                    to_lanes_any(x + off + g0 * lif, xb.data(), OLIF_LANES, lif, nl);
                    to_lanes_any(g + off + g0 * lif, gb.data(), OLIF_LANES, lif, nl);
                    olif_bwd_any(xb.data(), gb.data(), db.data(), OLIF_LANES, lif, nl, tau, vth, ubuf.data(),
                                 work.data(), work.data() + OLIF_LANES, work.data() + 2 * OLIF_LANES, dt.data(),
                                 dv.data());
                    from_lanes_any(db.data(), dx + off + g0 * lif, OLIF_LANES, lif, nl);
                }
                if (rest) std::memcpy(dx + off + full, g + off + full, sizeof(T) * rest);
            }
            part_tau[k] = std::accumulate(dt.begin(), dt.end(), 0.0);
            part_vth[k] = std::accumulate(dv.begin(), dv.end(), 0.0);
        });
    }
}

// ---- multi-step LIF / PLIF -------------------------------------------------------------
// x is (T, M): M independent neurons (lanes), T steps. The charge h_t = f(v_{t-1}, x_t) is
// written exactly as SpikingJelly 0.0.0.0.14 writes it; `c` is tau (LIF: a division) or
// k = sigmoid(w) (PLIF: a multiplication), `c2` the factor of kind 2:
//   kind 0: v + (x - v) op c            (decay_input, v_reset 0 or soft reset)
//   kind 1: v + (x - (v - vr)) op c     (decay_input, v_reset != 0; also eval hard reset)
//   kind 2: v * c2 + x                  (no decay_input, v_reset 0 or soft; c2 = 1 - 1/tau or 1 - k)
//   kind 3: v - (v - vr) op c + x       (no decay_input, v_reset != 0; also eval hard reset)
// Fire: s = (h - vth >= 0). Reset: hard v = s ? vr : h; soft v = h - s * vth.

template <class T, int KIND, bool MUL>
inline T charge(T v, T x, T c, T c2, T vr) {
    if (KIND == 0) return MUL ? v + (x - v) * c : v + (x - v) / c;
    if (KIND == 1) return MUL ? v + (x - (v - vr)) * c : v + (x - (v - vr)) / c;
    if (KIND == 2) return v * c2 + x;
    return MUL ? v - (v - vr) * c + x : v - (v - vr) / c + x;
}

// d h / d c for PLIF (c = k), given v = v_{t-1}
template <class T, int KIND>
inline T charge_dk(T v, T x, T vr) {
    if (KIND == 0) return x - v;
    if (KIND == 1) return x - (v - vr);
    if (KIND == 2) return -v;
    return -(v - vr);
}

template <class T, bool HARD>
inline T reset(T h, T s, T vr, T vth) {
    return HARD ? (s != T(0) ? vr : h) : h - s * vth;
}

const i64 LIF_LANES = 512;

struct LifArgs {
    i64 steps, lanes;
    double c, c2, vr, vth, vinit_s;
    // backward
    double alpha, dhdx, dhdv;
    int surrogate, detach, threads;
};

// One step of the charge/fire/reset recurrence over nl lanes; writes the spike (forward)
// or h (the backward's recomputation) to out. Separate functions with restrict pointers
// so that the compiler vectorises them without aliasing checks.
template <class T, int KIND, bool MUL, bool HARD, bool STORE_H>
void lif_step(const T* __restrict__ xt, T* __restrict__ v, T* __restrict__ out, i64 nl, T c, T c2, T vr, T vth) {
    for (i64 i = 0; i < nl; ++i) {
        const T h = charge<T, KIND, MUL>(v[i], xt[i], c, c2, vr);
        const T s = (h - vth) >= T(0) ? T(1) : T(0);
        out[i] = STORE_H ? h : s;
        v[i] = reset<T, HARD>(h, s, vr, vth);
    }
}

template <class T, int KIND, bool MUL, bool HARD>
void lif_forward_t(const T* x, const T* vinit, T* spikes, T* vfinal, const LifArgs& a) {
    const T c = (T)a.c, c2 = (T)a.c2, vr = (T)a.vr, vth = (T)a.vth, v0 = (T)a.vinit_s;
    const i64 M = a.lanes, steps = a.steps;
    const i64 blocks = (M + LIF_LANES - 1) / LIF_LANES;
    parallel_chunks(blocks, a.threads, std::max<i64>(1, 32768 / std::max<i64>(1, steps * LIF_LANES)),
                    [&](i64 b, i64 e, int) {
        std::vector<T> v(LIF_LANES);
        for (i64 blk = b; blk < e; ++blk) {
            const i64 i0 = blk * LIF_LANES, nl = std::min(LIF_LANES, M - i0);
            for (i64 i = 0; i < nl; ++i) v[i] = vinit ? vinit[i0 + i] : v0;
            for (i64 t = 0; t < steps; ++t)
                lif_step<T, KIND, MUL, HARD, false>(x + t * M + i0, v.data(), spikes + t * M + i0, nl, c, c2, vr, vth);
            if (vfinal) std::memcpy(vfinal + i0, v.data(), sizeof(T) * nl);
        }
    });
}

// exp for float in plain arithmetic (Cephes' expf polynomial), so that the loop around it
// vectorises; within 2 ulp of std::exp, which is what gradients "equal up to rounding" allow.
inline float exp_vec(float x) {
    x = std::min(std::max(x, -87.0f), 88.0f);
    const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    const float n = (x * 1.44269504088896341f + shifter) - shifter;
    const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * (r * r) + r + 1.0f;
    const int bits = ((int)n + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

inline double exp_vec(double x) { return std::exp(x); }

// Surrogate derivatives, as SpikingJelly's surrogate.ATan / surrogate.Sigmoid:
//   atan:    alpha / 2 / (1 + (pi / 2 * alpha * z)^2)
//   sigmoid: alpha * sig(alpha z) * (1 - sig(alpha z))
template <class T>
void surrogate_grad(const T* __restrict__ h, T* __restrict__ sg, i64 nl, T vth, int kind, T alpha) {
    if (kind == 0) {
        const T half_alpha = alpha / T(2), k = T(M_PI / 2) * alpha;
        for (i64 i = 0; i < nl; ++i) {
            const T z = k * (h[i] - vth);
            sg[i] = half_alpha / (T(1) + z * z);
        }
    } else {
        for (i64 i = 0; i < nl; ++i) {
            const T e = T(1) / (T(1) + exp_vec(-alpha * (h[i] - vth)));
            sg[i] = alpha * (T(1) - e) * e;
        }
    }
}

// Adjoint, with dv = dL/dv_t (v after the reset; starts at dL/dv_final):
//   dh = g_t * sg_t + dv * dv_t/dh_t,   dv_t/dh_t = hard: (1 - s) + (vr - h) sg,  soft: 1 - vth sg
//   (no sg term with detach_reset); dx_t = dh * dhdx; dv <- dh * dhdv; dk += dh * dh/dk.
template <class T, bool HARD>
void lif_adjoint_step(const T* __restrict__ ht, const T* __restrict__ gt, T* __restrict__ sg, T* __restrict__ dv,
                      T* __restrict__ dxt, i64 nl, T vr, T vth, T rs, T dhdx, T dhdv) {
    for (i64 i = 0; i < nl; ++i) {
        const T h = ht[i], sgi = sg[i];
        const T s = (h - vth) >= T(0) ? T(1) : T(0);
        const T dvdh = HARD ? (T(1) - s) + rs * (vr - h) * sgi : T(1) - rs * vth * sgi;
        const T dh = gt[i] * sgi + dv[i] * dvdh;
        dxt[i] = dh * dhdx;
        dv[i] = dh * dhdv;
        sg[i] = dh;  // kept for the k term
    }
}

// PLIF: acc += dh_t * dh_t/dk, with v_{t-1} from h_{t-1} (or v_init at t = 0)
template <class T, int KIND, bool HARD>
void lif_k_step(const T* __restrict__ xt, const T* __restrict__ hp, const T* __restrict__ vinit, T v0,
                const T* __restrict__ dh, T* __restrict__ acc, i64 nl, T vr, T vth) {
    for (i64 i = 0; i < nl; ++i) {
        T vp;
        if (hp) {
            const T s = (hp[i] - vth) >= T(0) ? T(1) : T(0);
            vp = reset<T, HARD>(hp[i], s, vr, vth);
        } else {
            vp = vinit ? vinit[i] : v0;
        }
        acc[i] += dh[i] * charge_dk<T, KIND>(vp, xt[i], vr);
    }
}

template <class T, int KIND, bool MUL, bool HARD>
void lif_backward_t(const T* x, const T* vinit, const T* gs, const T* gv, T* dx, T* dvinit, double* part_k,
                    const LifArgs& a) {
    const T c = (T)a.c, c2 = (T)a.c2, vr = (T)a.vr, vth = (T)a.vth, v0 = (T)a.vinit_s;
    const T alpha = (T)a.alpha, dhdx = (T)a.dhdx, dhdv = (T)a.dhdv;
    const T rs = a.detach ? T(0) : T(1);
    const bool want_k = part_k != nullptr;
    const i64 M = a.lanes, steps = a.steps;
    const i64 blocks = (M + LIF_LANES - 1) / LIF_LANES;
    parallel_chunks(blocks, a.threads, std::max<i64>(1, 32768 / std::max<i64>(1, steps * LIF_LANES)),
                    [&](i64 b, i64 e, int k) {
        std::vector<T> hbuf(steps * LIF_LANES), v(LIF_LANES), dv(LIF_LANES), sg(LIF_LANES), acc(LIF_LANES);
        double dk = 0;
        for (i64 blk = b; blk < e; ++blk) {
            const i64 i0 = blk * LIF_LANES, nl = std::min(LIF_LANES, M - i0);
            for (i64 i = 0; i < nl; ++i) v[i] = vinit ? vinit[i0 + i] : v0;
            for (i64 t = 0; t < steps; ++t)
                lif_step<T, KIND, MUL, HARD, true>(x + t * M + i0, v.data(), hbuf.data() + t * LIF_LANES, nl, c, c2,
                                                   vr, vth);
            for (i64 i = 0; i < nl; ++i) {
                dv[i] = gv ? gv[i0 + i] : T(0);
                acc[i] = T(0);
            }
            for (i64 t = steps - 1; t >= 0; --t) {
                const T* ht = hbuf.data() + t * LIF_LANES;
                surrogate_grad(ht, sg.data(), nl, vth, a.surrogate, alpha);
                lif_adjoint_step<T, HARD>(ht, gs + t * M + i0, sg.data(), dv.data(), dx + t * M + i0, nl, vr, vth,
                                          rs, dhdx, dhdv);
                if (want_k)
                    lif_k_step<T, KIND, HARD>(x + t * M + i0, t > 0 ? ht - LIF_LANES : nullptr,
                                              vinit ? vinit + i0 : nullptr, v0, sg.data(), acc.data(), nl, vr, vth);
            }
            if (dvinit) std::memcpy(dvinit + i0, dv.data(), sizeof(T) * nl);
            if (want_k)
                for (i64 i = 0; i < nl; ++i) dk += acc[i];
        }
        if (want_k) part_k[k] = dk;
    });
}

template <class T, int KIND, bool MUL>
void lif_dispatch_hard(int hard, int fwd, const T* x, const T* vinit, T* spikes, T* vfinal, const T* gs,
                       const T* gv, T* dx, T* dvinit, double* part_k, const LifArgs& a) {
    if (fwd) {
        if (hard) lif_forward_t<T, KIND, MUL, true>(x, vinit, spikes, vfinal, a);
        else lif_forward_t<T, KIND, MUL, false>(x, vinit, spikes, vfinal, a);
    } else {
        if (hard) lif_backward_t<T, KIND, MUL, true>(x, vinit, gs, gv, dx, dvinit, part_k, a);
        else lif_backward_t<T, KIND, MUL, false>(x, vinit, gs, gv, dx, dvinit, part_k, a);
    }
}

template <class T>
int lif_dispatch(int kind, int mul, int hard, int fwd, const T* x, const T* vinit, T* spikes, T* vfinal,
                 const T* gs, const T* gv, T* dx, T* dvinit, double* part_k, const LifArgs& a) {
#define LIF_CASE(K)                                                                                       \
    case K:                                                                                               \
        if (mul) lif_dispatch_hard<T, K, true>(hard, fwd, x, vinit, spikes, vfinal, gs, gv, dx, dvinit, part_k, a); \
        else lif_dispatch_hard<T, K, false>(hard, fwd, x, vinit, spikes, vfinal, gs, gv, dx, dvinit, part_k, a);  \
        return 0;
    switch (kind) {
        LIF_CASE(0)
        LIF_CASE(1)
        LIF_CASE(2)
        LIF_CASE(3)
    }
#undef LIF_CASE
    return 1;
}

}  // namespace

#define SNN_CPU_ENTRY_POINTS(T)                                                                            \
extern "C" void snn_olif_forward_##T(const T* x, T* y, i64 outer, i64 axis_len, i64 inner, int lif, int dim, \
                                     double tau, double vth, int threads) {                                \
    olif_forward<T>(x, y, outer, axis_len, inner, lif, dim, tau, vth, threads);                            \
}                                                                                                          \
extern "C" void snn_olif_backward_##T(const T* x, const T* g, T* dx, double* part_tau, double* part_vth,   \
                                      i64 outer, i64 axis_len, i64 inner, int lif, int dim, double tau,    \
                                      double vth, int threads) {                                           \
    olif_backward<T>(x, g, dx, part_tau, part_vth, outer, axis_len, inner, lif, dim, tau, vth, threads);   \
}                                                                                                          \
extern "C" int snn_lif_forward_##T(const T* x, const T* vinit, T* spikes, T* vfinal, i64 steps, i64 lanes,  \
                                   int kind, int mul, int hard, double c, double c2, double vr, double vth, \
                                   double vinit_s, int threads) {                                          \
    LifArgs a{steps, lanes, c, c2, vr, vth, vinit_s, 0, 0, 0, 0, 0, threads};                               \
    return lif_dispatch<T>(kind, mul, hard, 1, x, vinit, spikes, vfinal, nullptr, nullptr, nullptr, nullptr, \
                           nullptr, a);                                                                    \
}                                                                                                          \
extern "C" int snn_lif_backward_##T(const T* x, const T* vinit, const T* gs, const T* gv, T* dx, T* dvinit, \
                                    double* part_k, i64 steps, i64 lanes, int kind, int mul, int hard,     \
                                    double c, double c2, double vr, double vth, double vinit_s,            \
                                    int surrogate, double alpha, int detach, double dhdx, double dhdv,     \
                                    int threads) {                                                         \
    LifArgs a{steps, lanes, c, c2, vr, vth, vinit_s, alpha, dhdx, dhdv, surrogate, detach, threads};       \
    return lif_dispatch<T>(kind, mul, hard, 0, x, vinit, nullptr, nullptr, gs, gv, dx, dvinit, part_k, a);  \
}

SNN_CPU_ENTRY_POINTS(float)
SNN_CPU_ENTRY_POINTS(double)
