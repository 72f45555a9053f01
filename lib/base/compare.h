/* compare: qsort/bsearch comparators shared across modules. */
#ifndef STAMP_COMPARE_H
#define STAMP_COMPARE_H

/* orders an array of `const char *` by strcmp; a and b point at the
 * array's elements */
int compare_strings(const void *a, const void *b);

#endif
