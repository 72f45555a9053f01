/* tmpdir: the temporary directory DIR.tmp.PID that a directory is built
 * in before it is renamed into place (stamp init's store, stamp-world's
 * world, stamp export's model: store_create, world/stamp-world.c,
 * export_hf), and the cleaning up after a killed builder: its
 * DIR.tmp.PID stays behind, and the next builder of DIR removes it once
 * process PID is gone. */
#ifndef STAMP_TMPDIR_H
#define STAMP_TMPDIR_H

#include <stddef.h>

/* "DIR.tmp.PID" for this process into buf; dir has no trailing '/'.
 * ERR_INVALID when it does not fit. */
int tmpdir_name(char *buf, size_t size, const char *dir);

/* Removes the directory tree at dir (files, subdirectories, dir itself);
 * what cannot be removed stays. */
void tmpdir_remove(const char *dir);

/* Removes every DIR.tmp.PID beside dir whose process is gone
 * (kill(PID, 0) fails with ESRCH); a running process's temporary, any
 * user's, is kept. removed (may be NULL) hears of each one removed. */
void tmpdir_sweep_stale(const char *dir,
                        void (*removed)(void *ctx, const char *path,
                                        long pid),
                        void *ctx);

#endif
