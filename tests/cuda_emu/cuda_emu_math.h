/* cuda_emu_math.h: CUDA's device math that the host C library lacks, for the host emulation
 * (cuda_emu.h). The IEEE intrinsics (__fdiv_rn, __fmul_rn ...) are exact on the host too:
 * g++ compiles the emulated kernels with -ffp-contract=off, as nvcc builds them with
 * --fmad=false. The fast approximations (__expf, __fdividef, rsqrtf ...) are computed
 * exactly here, so a kernel that uses them is checked for its formula, not for the
 * approximation's error: compare those against the CPU at the GPU's tolerance. */
#ifndef DDIM_CUDA_EMU_MATH_H
#define DDIM_CUDA_EMU_MATH_H

#include <math.h>
#include <stdint.h>

/* min / max overloads of the CUDA math API (device code calls them unqualified) */
#define EMU_MINMAX(T)                                                                              \
    static inline T min(T a, T b)                                                                  \
    {                                                                                              \
        return a < b ? a : b;                                                                      \
    }                                                                                              \
    static inline T max(T a, T b)                                                                  \
    {                                                                                              \
        return a > b ? a : b;                                                                      \
    }
EMU_MINMAX(int)
EMU_MINMAX(unsigned)
EMU_MINMAX(long)
EMU_MINMAX(unsigned long)
EMU_MINMAX(long long)
EMU_MINMAX(unsigned long long)
static inline float min(float a, float b)
{
    return fminf(a, b);
}
static inline float max(float a, float b)
{
    return fmaxf(a, b);
}
static inline double min(double a, double b)
{
    return fmin(a, b);
}
static inline double max(double a, double b)
{
    return fmax(a, b);
}
#undef EMU_MINMAX

/* correctly rounded arithmetic intrinsics: the host's IEEE operations */
static inline float __fadd_rn(float a, float b)
{
    return a + b;
}
static inline float __fsub_rn(float a, float b)
{
    return a - b;
}
static inline float __fmul_rn(float a, float b)
{
    return a * b;
}
static inline float __fdiv_rn(float a, float b)
{
    return a / b;
}
static inline float __frcp_rn(float a)
{
    return 1.0f / a;
}
static inline float __fsqrt_rn(float a)
{
    return sqrtf(a);
}
static inline float __fmaf_rn(float a, float b, float c)
{
    return fmaf(a, b, c);
}
static inline double __dadd_rn(double a, double b)
{
    return a + b;
}
static inline double __dmul_rn(double a, double b)
{
    return a * b;
}
static inline double __fma_rn(double a, double b, double c)
{
    return fma(a, b, c);
}

/* fast approximations, computed exactly (see the top of the file); glibc has __expf,
 * __logf, __sinf, __cosf and __powf already, as exact aliases of expf ... */
static inline float __fdividef(float a, float b)
{
    return a / b;
}
static inline float fdividef(float a, float b)
{
    return a / b;
}
static inline float rsqrtf(float x)
{
    return 1.0f / sqrtf(x);
}
static inline double rsqrt(double x)
{
    return 1.0 / sqrt(x);
}
static inline float __saturatef(float x)
{
    return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); /* NaN gives 0, as on the GPU */
}
static inline int __float2int_rn(float x)
{
    return (int)nearbyintf(x);
}

/* integer intrinsics */
static inline unsigned __umulhi(unsigned a, unsigned b)
{
    return (unsigned)(((uint64_t)a * b) >> 32);
}
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b)
{
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
static inline int __popc(unsigned x)
{
    return __builtin_popcount(x);
}
static inline int __clz(unsigned x)
{
    return x ? __builtin_clz(x) : 32;
}
static inline int __ffs(unsigned x)
{
    return __builtin_ffs((int)x);
}

#endif
