/* compare: comparators for qsort and bsearch (see compare.h). */
#include "base/compare.h"

#include <string.h>

int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}
