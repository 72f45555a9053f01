/* test_errors: the error-code texts and per-thread detail messages. */
#include "base/errors.h"
#include "../harness.h"

#include <string.h>

TEST(detail_message_replaces_generic_text)
{
    err_clear();
    CHECK(!strcmp(err_message(ERR_FORMAT), "malformed input"));
    int rc = err_set(ERR_FORMAT, "'%s':%d: bad row", "a.csv", 3);
    CHECK(rc == ERR_FORMAT);
    CHECK(!strcmp(err_message(rc), "'a.csv':3: bad row"));
    err_clear();
    CHECK(!strcmp(err_message(ERR_IO), "input/output error"));
}

TEST(every_code_has_a_text)
{
    for (int c = ERR_OK; c >= ERR_EMPTY; c--)
        CHECK(strcmp(err_strerror(c), "unknown error") != 0);
    CHECK(!strcmp(err_strerror(-999), "unknown error"));
}

int main(void)
{
    RUN(detail_message_replaces_generic_text);
    RUN(every_code_has_a_text);
    return harness_summary();
}
