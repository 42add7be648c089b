// The GPU backend's own kernels, compiled at run time by NVRTC (see gpu.rs). Matrix products go to
// cuBLAS; everything element-wise or reducing is here, written to match the CPU engine's formulas
// (activations, their derivatives from outputs, the losses, Adam and SGD) to fp32 rounding.
//
// Activation codes, as in gpu.rs: 0 relu, 1 leaky relu (slope), 2 sigmoid, 3 tanh, 4 linear.

__device__ __forceinline__ float act_f(int act, float slope, float x) {
    switch (act) {
    case 0: return x > 0.f ? x : 0.f;
    case 1: return x > 0.f ? x : slope * x;
    case 2: {
        // The CPU's clamp of the exponent, written so that NaN stays NaN (fminf would drop it).
        float e = -x;
        e = e < -87.f ? -87.f : (e > 88.f ? 88.f : e);
        return 1.f / (1.f + expf(e));
    }
    case 3: return tanhf(x);
    default: return x;
    }
}

// d · act'(x) from the output y = act(x), in the CPU engine's order of operations
// (scale_by_derivative), so both round alike.
__device__ __forceinline__ float act_scale(int act, float slope, float d, float y) {
    switch (act) {
    case 0: return y > 0.f ? d : 0.f;
    case 1: return y > 0.f ? d : slope * d;
    case 2: return d * y * (1.f - y);
    case 3: return d * (1.f - y * y);
    default: return d;
    }
}

#define GRID_STRIDE(i, n) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
         i += (long long)gridDim.x * blockDim.x)

// A step's changing values live in one small device buffer, the step buffer, copied from the host
// before each step, so that a step recorded once as a CUDA graph replays with new values:
// words 0–1 the noise key (low, high), 2–3 the optimizer's rates (Adam: step size and
// 1/√(1 − β₂ᵗ); SGD: the rate), 4 a VAE's KL weight (β, warmed up), then the batch's row indices.
#define STEP_RATES 2
#define STEP_KL_WEIGHT 4
#define STEP_ROWS 5

__device__ __forceinline__ unsigned long long step_key(const unsigned int* stepbuf) {
    return ((unsigned long long)stepbuf[1] << 32) | stepbuf[0];
}

// dst[r, :] = src[idx[r], :]: a batch gathered from examples resident on the GPU, the indices
// read from the step buffer.
extern "C" __global__ void gather_rows(float* dst, const float* src, const unsigned int* stepbuf,
                                       int rows, int cols) {
    const unsigned int* idx = stepbuf + STEP_ROWS;
    long long n = (long long)rows * cols;
    GRID_STRIDE(i, n) {
        long long r = i / cols;
        long long c = i - r * cols;
        dst[i] = src[(long long)idx[r] * cols + c];
    }
}

// y[r, c] = act(y[r, c] + b[c]) in place (has_bias 0: no bias).
extern "C" __global__ void bias_act(float* y, const float* b, int has_bias, int rows, int cols,
                                    int act, float slope) {
    long long n = (long long)rows * cols;
    GRID_STRIDE(i, n) {
        float v = y[i];
        if (has_bias) v += b[i % cols];
        y[i] = act_f(act, slope, v);
    }
}

// d *= act'(y): a gradient brought through an activation.
extern "C" __global__ void act_backward(float* d, const float* y, long long n, int act,
                                        float slope) {
    GRID_STRIDE(i, n) { d[i] = act_scale(act, slope, d[i], y[i]); }
}

// gb[c] += Σ_r d[r, c]: a bias gradient. One thread per column; neighbouring threads read
// neighbouring columns, so each row is read in one sweep.
extern "C" __global__ void column_sums_add(float* gb, const float* d, int rows, int cols) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float s = 0.f;
    for (int r = 0; r < rows; r++) s += d[(long long)r * cols + c];
    gb[c] += s;
}

// The sum of this block's values `v` (one per thread, at most 256 threads), in double and in a
// fixed order, so deterministically; every thread gets it.
__device__ double block_total(double v) {
    __shared__ double shared[256];
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
        __syncthreads();
    }
    return shared[0];
}

// Sums this block's values in double, deterministically, into partial[blockIdx.x].
__device__ void block_sum(double v, double* partial) {
    double total = block_total(v);
    if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// Mean squared error over m elements: partial sums of (out − t)², and
// ∂loss/∂pre = 2(out − t)/m · act'(out). Launched with 256 threads per block.
extern "C" __global__ void mse_loss(const float* out, const float* t, float* dpre,
                                    double* partial, long long n, float m, int act,
                                    float slope) {
    double s = 0.0;
    GRID_STRIDE(i, n) {
        float o = out[i];
        float e = o - t[i];
        s += (double)(e * e);
        dpre[i] = act_scale(act, slope, 2.f * e / m, o);
    }
    block_sum(s, partial);
}

// Binary cross-entropy over m elements from the logits z: softplus(z) − t·z, computed as
// max(z, 0) − z·t + log1p(e^−|z|); ∂loss/∂z = (σ(z) − t)/m, σ(z) being the output. 256 threads
// per block.
extern "C" __global__ void bce_loss(const float* z, const float* out, const float* t, float* dpre,
                                    double* partial, long long n, float m) {
    double s = 0.0;
    GRID_STRIDE(i, n) {
        float zi = z[i];
        float ti = t[i];
        s += (double)(fmaxf(zi, 0.f) - zi * ti + log1pf(expf(-fabsf(zi))));
        dpre[i] = (out[i] - ti) / m;
    }
    block_sum(s, partial);
}

// result[slot] = Σ partial[0..blocks] (added to what it held when accumulate is 1), in a fixed
// order: one block of 256 threads.
extern "C" __global__ void sum_partials(const double* partial, int blocks, double* result,
                                        int slot, int accumulate) {
    double s = 0.0;
    for (int i = threadIdx.x; i < blocks; i += blockDim.x) s += partial[i];
    double total = block_total(s);
    if (threadIdx.x == 0) result[slot] = (accumulate ? result[slot] : 0.0) + total;
}

// Whether every term of the step (reconstruction, sparsity, weight decay, KL, contractive: result
// slots 0, 2, 4, 5, 7; a slot the run does not use stays 0) is finite: the CPU skips a step on any non-finite term.
__device__ bool step_is_finite(const double* loss) {
    return isfinite(loss[0] + loss[2] + loss[4] + loss[5] + loss[7]);
}

// Adam (PyTorch's rule), skipped when a term of the step's loss is not finite, so that a diverged
// step never reaches the weights, as on the CPU. The step size (times this parameter's `scale`)
// and 1/√(1 − β₂ᵗ) come from the step buffer.
extern "C" __global__ void adam(float* p, const float* g, float* m, float* v, long long n,
                                float beta1, float beta2, float eps, float scale,
                                const unsigned int* stepbuf, const double* loss) {
    if (!step_is_finite(loss)) return;
    float step_size = __uint_as_float(stepbuf[STEP_RATES]) * scale;
    float inv_sqrt_c2 = __uint_as_float(stepbuf[STEP_RATES + 1]);
    GRID_STRIDE(i, n) {
        float gi = g[i];
        float mi = beta1 * m[i] + (1.f - beta1) * gi;
        float vi = beta2 * v[i] + (1.f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= step_size * mi / (sqrtf(vi) * inv_sqrt_c2 + eps);
    }
}

// SGD with heavy-ball momentum (PyTorch's convention), skipped like Adam on a non-finite loss; the
// rate (times `scale`) from the step buffer.
extern "C" __global__ void sgd(float* p, const float* g, float* m, long long n, float momentum,
                               float scale, const unsigned int* stepbuf, const double* loss) {
    if (!step_is_finite(loss)) return;
    float lr = __uint_as_float(stepbuf[STEP_RATES]) * scale;
    GRID_STRIDE(i, n) {
        float mi = momentum * m[i] + g[i];
        m[i] = mi;
        p[i] -= lr * mi;
    }
}

// Weight decay on one weight tensor: g += λ·w (kind 2, L2) or λ·sign(w) (kind 1, L1) when has_grad,
// and partial sums of w² or |w| for its value. 256 threads per block.
extern "C" __global__ void weight_decay(float* g, const float* w, int has_grad, long long n,
                                        int kind, float lambda, double* partial) {
    double s = 0.0;
    GRID_STRIDE(i, n) {
        float wi = w[i];
        if (kind == 2) {
            s += (double)(wi * wi);
            if (has_grad) g[i] += lambda * wi;
        } else {
            s += (double)fabsf(wi);
            // sign(0) = 0, as torch.sign.
            if (has_grad) g[i] += lambda * (wi > 0.f ? 1.f : (wi < 0.f ? -1.f : 0.f));
        }
    }
    block_sum(s, partial);
}

// L1 activity sparsity on a code h: d += scale·sign(h) when has_grad, partial sums of |h|.
// 256 threads per block.
extern "C" __global__ void l1_code(const float* h, float* d, int has_grad, long long n,
                                   float scale, double* partial) {
    double s = 0.0;
    GRID_STRIDE(i, n) {
        float hi = h[i];
        s += (double)fabsf(hi);
        if (has_grad) d[i] += scale * (hi > 0.f ? 1.f : (hi < 0.f ? -1.f : 0.f));
    }
    block_sum(s, partial);
}

// means[c] = Σ_r h[r, c] / rows, in double: one thread per code unit.
extern "C" __global__ void column_means(const float* h, double* means, int rows, int cols) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    double s = 0.0;
    for (int r = 0; r < rows; r++) s += (double)h[(long long)r * cols + c];
    means[c] = s / (rows > 0 ? rows : 1);
}

// The KL sparsity penalty from the units' batch means ρ̂ (kept 1e-6 inside (0, 1)), one block of
// 256 threads: per_unit[j] = β/N · (−ρ/ρ̂_j + (1−ρ)/(1−ρ̂_j)), and result[slot] (added to when
// accumulate) += weight · β Σ_j KL(ρ ‖ ρ̂_j).
extern "C" __global__ void kl_units(const double* means, int k, double rho, double beta,
                                    int rows, float* per_unit, double* result, int slot,
                                    int accumulate, double weight) {
    double s = 0.0;
    for (int j = threadIdx.x; j < k; j += blockDim.x) {
        double m = fmin(fmax(means[j], 1e-6), 1.0 - 1e-6);
        s += rho * log(rho / m) + (1.0 - rho) * log((1.0 - rho) / (1.0 - m));
        per_unit[j] = (float)(beta / (rows > 0 ? rows : 1) * (-rho / m + (1.0 - rho) / (1.0 - m)));
    }
    double total = block_total(s);
    if (threadIdx.x == 0) result[slot] = (accumulate ? result[slot] : 0.0) + weight * beta * total;
}

// d[r, c] += v[c].
extern "C" __global__ void add_rows(float* d, const float* v, int rows, int cols) {
    long long n = (long long)rows * cols;
    GRID_STRIDE(i, n) { d[i] += v[i % cols]; }
}

// A counter-based random number: element i of the stream `key` (splitmix64), as 64 bits.
__device__ __forceinline__ unsigned long long mix(unsigned long long key, unsigned long long i) {
    unsigned long long z = key + (i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// A uniform draw in [0, 1) from the top 24 bits.
__device__ __forceinline__ float uniform(unsigned long long bits) {
    return (float)(bits >> 40) * (1.f / 16777216.f);
}

// Input corruption for a denoising step, drawn on the GPU from the stream whose key (the run's
// seed, epoch and step) the step buffer holds: kind 0 adds N(0, param²) (Box–Muller), 1 masks with
// probability param, 2 sets to 0 or 1 with probability param (salt and pepper).
extern "C" __global__ void corrupt(float* out, const float* x, long long n, int kind, float param,
                                   const unsigned int* stepbuf) {
    unsigned long long key = step_key(stepbuf);
    GRID_STRIDE(i, n) {
        unsigned long long a = mix(key, 2 * (unsigned long long)i);
        float u = uniform(a);
        float v = x[i];
        if (kind == 0) {
            float u2 = uniform(mix(key, 2 * (unsigned long long)i + 1));
            float r = sqrtf(-2.f * logf(1.f - u));
            out[i] = v + param * r * cospif(2.f * u2);
        } else if (kind == 1) {
            out[i] = u < param ? 0.f : v;
        } else {
            out[i] = u < param ? (float)((a >> 8) & 1) : v;
        }
    }
}

// out = act(z): the reconstruction from the logits.
extern "C" __global__ void act_out(float* out, const float* z, long long n, int act, float slope) {
    GRID_STRIDE(i, n) { out[i] = act_f(act, slope, z[i]); }
}

// Between (C, H, W) rows and channels-last (H, W, C) images, n images: to_last 1 reads CHW and
// writes HWC, 0 the reverse. Also the backward pass of the opposite direction.
extern "C" __global__ void permute_chw(float* dst, const float* src, int n, int c, int h, int w,
                                       int to_last) {
    long long hw = (long long)h * w;
    long long len = (long long)n * c * hw;
    GRID_STRIDE(i, len) {
        // i indexes the channels-last image: (b, p, ch) with p = y·w + x.
        long long b = i / (hw * c);
        long long r = i - b * hw * c;
        long long p = r / c;
        long long ch = r - p * c;
        long long j = b * hw * c + ch * hw + p;
        if (to_last) dst[i] = src[j];
        else dst[j] = src[i];
    }
}

// Patches (im2col) of n channels-last images h × w × c seen through a k × k kernel with the
// stride and zero padding: cols[(b, oy, ox), (ky, kx, ch)], the CPU engine's patch order.
extern "C" __global__ void im2col(float* cols, const float* x, int n, int h, int w, int c, int oh,
                                  int ow, int k, int stride, int pad) {
    long long width = (long long)k * k * c;
    long long len = (long long)n * oh * ow * width;
    GRID_STRIDE(i, len) {
        long long row = i / width;
        long long q = i - row * width;
        int ch = (int)(q % c);
        int kx = (int)((q / c) % k);
        int ky = (int)(q / ((long long)c * k));
        long long b = row / ((long long)oh * ow);
        int pix = (int)(row - b * oh * ow);
        int y = (pix / ow) * stride - pad + ky;
        int xx = (pix % ow) * stride - pad + kx;
        float v = 0.f;
        if (y >= 0 && y < h && xx >= 0 && xx < w) v = x[((b * h + y) * w + xx) * c + ch];
        cols[i] = v;
    }
}

// The reverse of im2col for gradients (col2im): dx[b, y, x, ch] = Σ of the patch values that read
// that pixel, gathered per pixel (no atomics; the same sum in the same order on every run).
extern "C" __global__ void col2im(float* dx, const float* cols, int n, int h, int w, int c,
                                  int oh, int ow, int k, int stride, int pad) {
    long long width = (long long)k * k * c;
    long long len = (long long)n * h * w * c;
    GRID_STRIDE(i, len) {
        int ch = (int)(i % c);
        long long pix = i / c;
        int xx = (int)(pix % w);
        int y = (int)((pix / w) % h);
        long long b = pix / ((long long)w * h);
        float s = 0.f;
        for (int ky = 0; ky < k; ky++) {
            int ty = y + pad - ky;
            if (ty < 0 || ty % stride != 0) continue;
            int oy = ty / stride;
            if (oy >= oh) continue;
            for (int kx = 0; kx < k; kx++) {
                int tx = xx + pad - kx;
                if (tx < 0 || tx % stride != 0) continue;
                int ox = tx / stride;
                if (ox >= ow) continue;
                long long row = (b * oh + oy) * ow + ox;
                s += cols[row * width + ((long long)ky * k + kx) * c + ch];
            }
        }
        dx[i] = s;
    }
}

// A PyTorch conv weight (a, b, kk) as rows in patch order: out[(i·kk + t)·b + j] = w[(i·b + j)·kk + t].
extern "C" __global__ void to_patch_order(float* out, const float* w, int a, int b, int kk) {
    long long len = (long long)a * b * kk;
    GRID_STRIDE(o, len) {
        long long j = o % b;
        long long t = (o / b) % kk;
        long long i = o / ((long long)b * kk);
        out[o] = w[(i * b + j) * kk + t];
    }
}

// Adds a patch-ordered gradient back into a PyTorch-layout one: g[(i·b + j)·kk + t] += m[(i·kk + t)·b + j].
extern "C" __global__ void add_from_patch_order(float* g, const float* m, int a, int b, int kk) {
    long long len = (long long)a * b * kk;
    GRID_STRIDE(o, len) {
        long long t = o % kk;
        long long j = (o / kk) % b;
        long long i = o / ((long long)b * kk);
        g[o] += m[(i * kk + t) * b + j];
    }
}

// Max pooling of n channels-last images over k × k windows with stride k.
extern "C" __global__ void max_pool(float* y, const float* x, int n, int h, int w, int c, int k) {
    int oh = h / k, ow = w / k;
    long long len = (long long)n * oh * ow * c;
    GRID_STRIDE(i, len) {
        int ch = (int)(i % c);
        long long o = i / c;
        int ox = (int)(o % ow);
        int oy = (int)((o / ow) % oh);
        long long b = o / ((long long)ow * oh);
        float m = __int_as_float(0xff800000);  // −∞ (NVRTC has no INFINITY)
        for (int dy = 0; dy < k; dy++)
            for (int dx = 0; dx < k; dx++)
                m = fmaxf(m, x[((b * h + oy * k + dy) * w + ox * k + dx) * c + ch]);
        y[i] = m;
    }
}

// Max pooling's gradient: each window's gradient goes to the first of its pixels (in row order)
// that holds the maximum, as on the CPU; pixels outside every window get 0.
extern "C" __global__ void max_pool_backward(float* dx, const float* dy, const float* x,
                                             const float* y, int n, int h, int w, int c, int k) {
    int oh = h / k, ow = w / k;
    long long len = (long long)n * h * w * c;
    GRID_STRIDE(i, len) {
        int ch = (int)(i % c);
        long long pix = i / c;
        int xx = (int)(pix % w);
        int yy = (int)((pix / w) % h);
        long long b = pix / ((long long)w * h);
        int oy = yy / k, ox = xx / k;
        float g = 0.f;
        if (oy < oh && ox < ow) {
            long long o = ((b * oh + oy) * ow + ox) * c + ch;
            float m = y[o];
            if (x[i] == m) {
                // Taken only if no earlier pixel of the window holds the maximum.
                int first = 1, reached = 0;
                for (int wy = 0; wy < k && first && !reached; wy++)
                    for (int wx = 0; wx < k; wx++) {
                        int py = oy * k + wy, px = ox * k + wx;
                        if (py == yy && px == xx) { reached = 1; break; }
                        if (x[((b * h + py) * w + px) * c + ch] == m) { first = 0; break; }
                    }
                if (first) g = dy[o];
            }
        }
        dx[i] = g;
    }
}

// Nearest upsampling of n channels-last images h × w × c by k.
extern "C" __global__ void upsample(float* y, const float* x, int n, int h, int w, int c, int k) {
    int oh = h * k, ow = w * k;
    long long len = (long long)n * oh * ow * c;
    GRID_STRIDE(i, len) {
        int ch = (int)(i % c);
        long long o = i / c;
        int ox = (int)(o % ow);
        int oy = (int)((o / ow) % oh);
        long long b = o / ((long long)ow * oh);
        y[i] = x[((b * h + oy / k) * w + ox / k) * c + ch];
    }
}

// Upsampling's gradient: each input pixel sums its k × k copies, rows then columns, as on the CPU.
extern "C" __global__ void upsample_backward(float* dx, const float* dy, int n, int h, int w,
                                             int c, int k) {
    int ow = w * k;
    long long len = (long long)n * h * w * c;
    GRID_STRIDE(i, len) {
        int ch = (int)(i % c);
        long long pix = i / c;
        int xx = (int)(pix % w);
        int yy = (int)((pix / w) % h);
        long long b = pix / ((long long)w * h);
        float s = 0.f;
        for (int t = 0; t < k; t++)
            for (int u = 0; u < k; u++)
                s += dy[((b * h * k + yy * k + t) * (long long)ow + xx * k + u) * c + ch];
        dx[i] = s;
    }
}

// A standard normal draw for element i of the stream `key` (Box–Muller on two uniforms).
__device__ __forceinline__ float normal(unsigned long long key, unsigned long long i) {
    float u = uniform(mix(key, 2 * i));
    float u2 = uniform(mix(key, 2 * i + 1));
    return sqrtf(-2.f * logf(1.f - u)) * cospif(2.f * u2);
}

// A VAE's sample from the encoder's output h = [μ | log σ²] (n rows of 2k): ε drawn from the key in
// keybuf (words 0–1; the stream is kept apart from input noise's), or 0 when sample is 0, and
// z = μ + e^(log σ² / 2)·ε.
extern "C" __global__ void reparam(float* z, float* eps, const float* h, int n, int k, int sample,
                                   const unsigned int* keybuf) {
    unsigned long long key = step_key(keybuf) ^ 0x5DEECE66DA3C9B71ULL;
    long long len = (long long)n * k;
    GRID_STRIDE(i, len) {
        long long r = i / k;
        long long j = i - r * k;
        float e = sample ? normal(key, (unsigned long long)i) : 0.f;
        eps[i] = e;
        const float* row = h + r * 2 * k;
        // Without a draw z is μ itself (not μ + σ·0, which is NaN where σ overflows).
        z[i] = sample ? row[j] + expf(0.5f * row[k + j]) * e : row[j];
    }
}

// The sample's gradient back to h: ∂/∂μ = dz, ∂/∂log σ² = dz·ε·½·e^(log σ² / 2).
extern "C" __global__ void reparam_backward(float* dh, const float* dz, const float* eps,
                                            const float* h, int n, int k) {
    long long len = (long long)n * k;
    GRID_STRIDE(i, len) {
        long long r = i / k;
        long long j = i - r * k;
        const float* row = h + r * 2 * k;
        float* drow = dh + r * 2 * k;
        drow[j] = dz[i];
        drow[k + j] = dz[i] * eps[i] * 0.5f * expf(0.5f * row[k + j]);
    }
}

// Each latent unit's KL divergence from the prior, averaged over the n rows (in double):
// units[j] = mean_r ½(μ² + σ² − 1 − log σ²). One thread per unit.
extern "C" __global__ void kl_gauss_units(const float* h, double* units, int n, int k) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= k) return;
    double s = 0.0;
    for (int r = 0; r < n; r++) {
        float mu = h[(long long)r * 2 * k + j];
        float lv = h[(long long)r * 2 * k + k + j];
        s += (double)(0.5f * (mu * mu + expf(lv) - 1.f - lv));
    }
    units[j] = s / (n > 0 ? n : 1);
}

// result[slot] (+)= weight · Σ_j units[j], one block of 256 threads.
extern "C" __global__ void kl_gauss_total(const double* units, int k, double* result, int slot,
                                          int accumulate, double weight) {
    double s = 0.0;
    for (int j = threadIdx.x; j < k; j += blockDim.x) s += units[j];
    double total = block_total(s);
    if (threadIdx.x == 0) result[slot] = (accumulate ? result[slot] : 0.0) + weight * total;
}

// The KL term's gradient, times the step buffer's weight w, added to dh: w/n·μ and
// w/n·½(σ² − 1) for each unit at or above the free-bits floor (every unit when has_floor is 0).
extern "C" __global__ void kl_gauss_grad(float* dh, const float* h, const double* units, int n,
                                         int k, int has_floor, float floor,
                                         const unsigned int* stepbuf) {
    float scale = __uint_as_float(stepbuf[STEP_KL_WEIGHT]) / (float)(n > 0 ? n : 1);
    long long len = (long long)n * k;
    GRID_STRIDE(i, len) {
        long long r = i / k;
        long long j = i - r * k;
        if (has_floor && !(units[j] >= (double)floor)) continue;
        const float* row = h + r * 2 * k;
        float* drow = dh + r * 2 * k;
        drow[j] += scale * row[j];
        drow[k + j] += scale * 0.5f * (expf(row[k + j]) - 1.f);
    }
}

// s'(a) and its derivative s''(a) for an activation, from its output h = s(a) (ReLU and leaky
// ReLU: h > 0 exactly when a > 0).
__device__ void slope_curvature(int act, float slope, float h, float* s, float* ds) {
    if (act == 0) {
        *s = h > 0.f ? 1.f : 0.f;
        *ds = 0.f;
    } else if (act == 1) {
        *s = h > 0.f ? 1.f : slope;
        *ds = 0.f;
    } else if (act == 2) {
        float v = h * (1.f - h);
        *s = v;
        *ds = v * (1.f - 2.f * h);
    } else if (act == 3) {
        float v = 1.f - h * h;
        *s = v;
        *ds = -2.f * h * v;
    } else {
        *s = 1.f;
        *ds = 0.f;
    }
}

// The contractive penalty (Rifai et al., 2011) of a one-layer encoder h = s(x Wᵀ + b), W [k, d],
// on `rows` examples, in closed form: ‖J‖²_F = Σ_j s'(a_j)² ‖W_j‖². One thread per code unit j:
// s2[j] = Σ_n s'(a_nj)², val[j] = ‖W_j‖² · s2[j], and when has_grad the gradient at the
// pre-activation, dpre[n, j] += scale · ‖W_j‖² · 2 s' s'' (scale = λ/N).
extern "C" __global__ void contractive_units(const float* h, float* dpre, const float* w, int rows,
                                             int k, int d, int act, float slope, float scale,
                                             int has_grad, double* s2, double* val) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= k) return;
    float norm = 0.f;
    for (int i = 0; i < d; i++) {
        float v = w[(long long)j * d + i];
        norm += v * v;
    }
    double acc = 0.0;
    for (int r = 0; r < rows; r++) {
        long long e = (long long)r * k + j;
        float s, ds;
        slope_curvature(act, slope, h[e], &s, &ds);
        acc += (double)(s * s);
        if (has_grad) dpre[e] += scale * norm * 2.f * s * ds;
    }
    s2[j] = acc;
    val[j] = (double)norm * acc;
}

// The penalty's direct gradient in W: g[j, i] += coef · s2[j] · w[j, i] (coef = 2λ/N).
extern "C" __global__ void contractive_weight_grad(float* g, const float* w, const double* s2,
                                                   long long n, int d, float coef) {
    GRID_STRIDE(e, n) { g[e] += coef * (float)s2[e / d] * w[e]; }
}

// Dynamic binarization of a batch in [0, 1], in place: each value becomes 1 with probability equal
// to itself, drawn from the step's key (salted apart from the noise's and ε's draws).
extern "C" __global__ void binarize(float* x, long long n, const unsigned int* stepbuf) {
    unsigned long long key = step_key(stepbuf) ^ 0xB1A2B1A2B1A2B1A2ULL;
    GRID_STRIDE(i, n) { x[i] = uniform(mix(key, (unsigned long long)i)) < x[i] ? 1.f : 0.f; }
}
