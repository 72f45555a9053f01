/* splitmix: the small, seedable generator every sampler in stamp uses
 * (worlds, training batch order, initial weights, sampled predictions,
 * random test vectors). splitmix64 passes BigCrush, needs one word of
 * state and gives the same stream on every machine, which is what makes
 * worlds and commits reproducible byte for byte. */
#ifndef STAMP_SPLITMIX_H
#define STAMP_SPLITMIX_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* The next 64 random bits; advances *state. */
static inline uint64_t splitmix_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1), 53 random bits. */
static inline double splitmix_unit(uint64_t *state)
{
    return (double)(splitmix_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* Shuffles a[0..n) in place (Fisher-Yates, draws from the top down). */
static inline void splitmix_shuffle(size_t *a, size_t n, uint64_t *state)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(splitmix_next(state) % i);
        size_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* Standard normal (Box-Muller; u1 in (0, 1] so the log is finite). Test
 * data and benchmarks use it; gpt2's initial weights keep their own. */
static inline double splitmix_normal(uint64_t *state)
{
    double u1 = ((splitmix_next(state) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = splitmix_unit(state);
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

#endif
