/* half: conversions between float and the two 16-bit float formats that
 * model files store, IEEE half (F16) and bfloat16 (BF16). Header-only
 * (static inline) because the conversion loops of the safetensors
 * reader, the layer kernels and the GGUF writer call them per element.
 * To float: exact for every input (subnormals, inf, NaN payloads).
 * From float: round to nearest, ties to even, as PyTorch and ggml do. */
#ifndef STAMP_HALF_H
#define STAMP_HALF_H

#include <stdint.h>
#include <string.h>

static inline float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: man * 2^-24, exact in single precision */
        float v = (float)man * 0x1p-24f;
        memcpy(&bits, &v, 4);
        bits |= sign;
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

/* bfloat16 is the top half of a float */
static inline float bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

static inline uint16_t float_to_half(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t a = u & 0x7fffffffu;
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    if (a >= 0x7f800000u) /* inf, NaN */
        return sign | (a > 0x7f800000u ? 0x7e00 : 0x7c00);
    if (a >= 0x477ff000u) return sign | 0x7c00; /* >= 65520: inf */
    if (a < 0x38800000u) { /* below 2^-14: an f16 subnormal, or 0 */
        int e = (int)(a >> 23);
        if (e < 101) return sign; /* below 2^-25 */
        uint32_t m = (a & 0x7fffffu) | 0x800000u;
        int shift = 126 - e; /* x * 2^24 = m >> shift */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1),
                 half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    uint32_t h = (a >> 13) - (112u << 10), rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return sign | (uint16_t)h;
}

static inline uint16_t float_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it quiet */
        return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

#endif
