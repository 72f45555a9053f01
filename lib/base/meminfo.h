/* meminfo: how much memory the machine has for new allocations, so that
 * a long computation that cannot fit is refused before it starts rather
 * than killed by the kernel half-way (the key statistics). */
#ifndef STAMP_MEMINFO_H
#define STAMP_MEMINFO_H

#include <stddef.h>
#include <stdint.h>

/* MemAvailable of /proc/meminfo, in bytes. STAMP_TEST_MEM_AVAILABLE (a
 * number of bytes), when set, is returned instead: the tests fake a
 * small machine with it. ERR_NOTFOUND when neither can be read. */
int meminfo_available(uint64_t *bytes);

/* bytes as text for a message: "512 MiB", "1.50 GiB" (buf of size). */
const char *meminfo_format(char *buf, size_t size, uint64_t bytes);

/* With STAMP_DEBUG_RSS set (non-empty), one line on stderr:
 * "rss: LABEL: peak VmHWM MiB, now VmRSS MiB" from /proc/self/status;
 * nothing otherwise. The commit calls it at each phase's end, to find
 * which phase holds the memory. */
void meminfo_debug_rss(const char *label);

#endif
