/* lm_wrap: test-only. A GPT-2 model a test owns, seen through the
 * family interface (model/lm.h) that the library's editing, eval and
 * predict calls take: lm_of(&g) wraps it in place (a small ring of
 * wrappers, so several can be alive in one call's arguments). */
#ifndef STAMP_TEST_LM_WRAP_H
#define STAMP_TEST_LM_WRAP_H

#include "model/lm.h"

static inline lm_model *lm_of(gpt2_model *g)
{
    static lm_model ring[16];
    static unsigned next;
    lm_model *m = &ring[next++ % 16];
    lm_from_gpt2(m, g);
    return m;
}

#endif
