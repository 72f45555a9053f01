/* clock: the one monotonic clock every phase timing, progress line and
 * lock deadline reads. */
#ifndef STAMP_CLOCK_H
#define STAMP_CLOCK_H

/* seconds on CLOCK_MONOTONIC since an arbitrary start: only differences
 * mean anything */
double clock_seconds(void);

#endif
