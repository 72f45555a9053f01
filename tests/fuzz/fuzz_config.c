/* fuzz_config: libFuzzer target for gpt2_config_read. The input is a
 * config.json (through a memfd). Open must return 0 or ERR_FORMAT; a
 * config it accepts must satisfy the documented invariants and survive
 * gpt2_config_write + gpt2_config_read unchanged (written to
 * /dev/shm/fuzz_config.PID.json, removed after each input, so the fsyncs
 * cost nothing and nothing is left behind). */
#include "base/errors.h"
#include "model/gpt2_config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int fd = -1;
static char path[64], out[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fd < 0) {
        fd = memfd_create("fuzz_config", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        snprintf(out, sizeof out, "/dev/shm/fuzz_config.%d.json", (int)getpid());
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    gpt2_config c, d;
    memset(&c, 0xa5, sizeof c);
    int rc = gpt2_config_read(&c, path);
    if (rc != 0) {
        if (rc != ERR_FORMAT) abort();
        if (!strstr(err_message(rc), path)) abort();
        return 0;
    }
    if (!c.n_layer || !c.n_head || !c.n_embd || !c.n_positions ||
        !c.vocab_size || !c.n_inner || c.n_embd % c.n_head ||
        !(c.layer_norm_epsilon > 0 && c.layer_norm_epsilon < 1))
        abort();
    if (gpt2_config_write(&c, out) != 0) abort();
    if (gpt2_config_read(&d, out) != 0 || c.n_layer != d.n_layer ||
        c.n_head != d.n_head || c.n_embd != d.n_embd ||
        c.n_positions != d.n_positions || c.vocab_size != d.vocab_size ||
        c.n_inner != d.n_inner || c.layer_norm_epsilon != d.layer_norm_epsilon)
        abort(); /* field by field: memcmp would compare padding */
    unlink(out);
    return 0;
}
