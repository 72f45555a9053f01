/* fuzz_safetensors: libFuzzer target for safetensors_open. The input is
 * a whole file, handed over through a memfd (the reader takes a path).
 * Whatever the bytes, open must return 0 or ERR_FORMAT without touching
 * memory it does not own; on success every tensor is looked up by name
 * and converted to F32, which reads every byte of its range.
 *
 *   make fuzz FUZZ_SECONDS=60      (builds with clang, runs each target) */
#include "base/errors.h"
#include "model/safetensors.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int fd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fd < 0) {
        fd = memfd_create("fuzz_safetensors", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    st_file *f = NULL;
    int rc = safetensors_open(&f, path);
    if (rc != 0) {
        if (rc != ERR_FORMAT || f) abort();
        if (!strstr(err_message(rc), path)) abort(); /* names the file */
        return 0;
    }
    size_t total = 0;
    for (size_t i = 0; i < safetensors_count(f); i++) {
        const st_tensor *t = safetensors_at(f, i);
        if (safetensors_find(f, t->name) != t) abort(); /* names unique */
        total += t->nbytes;
        if (t->numel > (64u << 20)) continue; /* in bounds, just too big */
        float *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
        if (!out) abort();
        safetensors_to_f32(t, out);
        free(out);
    }
    if (total > size) abort(); /* ranges tile the data inside the file */
    safetensors_close(f);
    return 0;
}
