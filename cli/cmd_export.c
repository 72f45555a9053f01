/* export: writes the current model (base + the store's edited tensors)
 * as a complete Hugging Face model directory. The work is the
 * library's (repo/export.h: export_hf builds it beside DIR and moves it
 * into place, so a failure never leaves half a model); this file parses
 * the options and prints what was exported. */
#include "cli/cli.h"
#include "base/errors.h"
#include "repo/export.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>

const char cmd_export_usage[] =
    "stamp export DIR [--force]\n"
    "\n"
    "Writes the current model (the base model with every edit in effect)\n"
    "to DIR in the Hugging Face layout: config.json, model.safetensors (the\n"
    "base file's tensor names and order, F32), vocab.json and merges.txt,\n"
    "plus tokenizer and generation files when the base model has them. It\n"
    "loads wherever the base model loads. The base model is never written.\n"
    "\n"
    "  --force   write into DIR even when it is not empty (files of the\n"
    "            same names are replaced, others left alone)\n"
    "\n"
    "DIR is created when missing; a non-empty DIR is refused without\n"
    "--force, and so is the base model's own directory.\n";

int cmd_export(int argc, char **argv, const cli_globals *g)
{
    static const struct option opts[] = {
        {"force", no_argument, 0, 'f'},
        {0, 0, 0, 0},
    };
    if (cli_wants_help(argc, argv, "export")) return EXIT_OK;
    int force = 0, c;
    cli_options_begin();
    while ((c = getopt_long(argc, argv, ":f", opts, NULL)) != -1) {
        switch (c) {
        case 'f': force = 1; break;
        default: return cli_option_error("export", c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("export", "where to? (a directory)");
    if (optind + 1 < argc)
        return cli_usage_error("export", "unexpected argument '%s'",
                               argv[optind + 1]);
    const char *dir = argv[optind];

    /* DIR is checked before the store is opened (export_hf checks again) */
    store *s = NULL;
    export_result r;
    int rc = export_check_dir(dir, force, NULL);
    if (!rc) rc = cli_store_open(&s, g);
    if (!rc) rc = export_hf(s, dir, force, &r);
    store_close(s);
    if (rc) return cli_fail_code(rc);
    if (r.head)
        printf("exported commit %llu to '%s'", (unsigned long long)r.head, dir);
    else
        printf("exported the base model (no commits) to '%s'", dir);
    printf(": %zu tensor%s, %zu edited\n", r.n_tensors,
           r.n_tensors == 1 ? "" : "s", r.n_edited);
    return EXIT_OK;
}
