/* meminfo: the machine's available memory (see meminfo.h). Linux only:
 * MemAvailable is the kernel's own estimate of what can be allocated
 * without swapping, page cache that can be dropped included. */
#include "base/meminfo.h"
#include "base/errors.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int meminfo_available(uint64_t *bytes)
{
    const char *fake = getenv("STAMP_TEST_MEM_AVAILABLE");
    if (fake && *fake) {
        char *end;
        unsigned long long v = strtoull(fake, &end, 10);
        if (*end)
            return err_set(ERR_INVALID, "STAMP_TEST_MEM_AVAILABLE '%s' is "
                           "not a number of bytes", fake);
        *bytes = v;
        return 0;
    }
    FILE *fp = fopen("/proc/meminfo", "r");
    char line[256];
    int found = 0;
    while (fp && !found && fgets(line, sizeof line, fp)) {
        unsigned long long kb;
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
            *bytes = (uint64_t)kb * 1024;
            found = 1;
        }
    }
    if (fp) fclose(fp);
    return found ? 0 : err_set(ERR_NOTFOUND, "/proc/meminfo gives no "
                               "MemAvailable");
}

const char *meminfo_format(char *buf, size_t size, uint64_t bytes)
{
    if (bytes >= ((uint64_t)1 << 30))
        snprintf(buf, size, "%.2f GiB", (double)bytes / (1 << 30));
    else
        snprintf(buf, size, "%" PRIu64 " MiB", (bytes + (1 << 19)) >> 20);
    return buf;
}

void meminfo_debug_rss(const char *label)
{
    const char *env = getenv("STAMP_DEBUG_RSS");
    if (!env || !*env) return;
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long hwm = 0, rss = 0, kb;
    while (fp && fgets(line, sizeof line, fp)) {
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1) hwm = kb;
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) rss = kb;
    }
    if (fp) fclose(fp);
    fprintf(stderr, "rss: %s: peak %llu MiB, now %llu MiB\n",
            label && *label ? label : "?", hwm / 1024, rss / 1024);
}
