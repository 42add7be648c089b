// Lets the GPU kernels (src/cuda/kernels.cu) compile as plain C++ and run on a CPU as one thread of
// one block, so that every grid-stride loop visits every element in order. It checks the kernels'
// indexing and arithmetic against PyTorch where there is no GPU (CI); it says nothing about running
// them on a GPU, which tests/gpu.rs does.
#include <cmath>
#include <cstdint>
#include <cstring>

struct AeDim {
    unsigned int x, y, z;
};
static AeDim blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0};
static AeDim blockDim = {1, 1, 1}, gridDim = {1, 1, 1};

// Which thread of which grid the next call plays: kernels without shared memory can be run once
// per thread, in turn, to check how they split their work. The default is one thread of one block.
extern "C" void ae_thread(unsigned int grid, unsigned int block, unsigned int b, unsigned int t) {
    gridDim.x = grid;
    blockDim.x = block;
    blockIdx.x = b;
    threadIdx.x = t;
}

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

inline void __syncthreads() {}
inline float __uint_as_float(unsigned int u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}
inline float __int_as_float(int u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}
inline float cospif(float x) { return std::cos(3.14159265358979323846f * x); }
using std::fmax;
using std::fmin;
using std::isfinite;
