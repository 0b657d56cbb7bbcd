/*
 * The harnesses without libFuzzer: runs LLVMFuzzerTestOneInput once over
 * each file named (or each file in each directory named), for `make test`.
 */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path);


static long  replayed;


int
main(int argc, char **argv)
{
    int             i, rc;
    char            path[4096];
    DIR            *d;
    struct stat     st;
    struct dirent  *e;

    if (LLVMFuzzerInitialize) {
        LLVMFuzzerInitialize(&argc, &argv);
    }

    rc = 0;

    for (i = 1; i < argc; i++) {
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "%s: cannot stat %s\n", argv[0], argv[i]);
            return 1;
        }

        if (!S_ISDIR(st.st_mode)) {
            rc |= replay_file(argv[i]);
            continue;
        }

        d = opendir(argv[i]);
        if (d == NULL) {
            fprintf(stderr, "%s: cannot open %s\n", argv[0], argv[i]);
            return 1;
        }

        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') {
                continue;
            }

            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            rc |= replay_file(path);
        }

        closedir(d);
    }

    printf("%s: %ld inputs replayed\n", argv[0], replayed);

    return rc;
}


/* the file in a buffer of its exact size, so ASan sees any overread */

static int
replay_file(const char *path)
{
    long      n;
    FILE     *f;
    uint8_t  *buf;

    f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0) {
        fprintf(stderr, "cannot read %s\n", path);
        if (f) {
            fclose(f);
        }
        return 1;
    }

    rewind(f);

    buf = malloc(n ? n : 1);
    if (buf == NULL || fread(buf, 1, n, f) != (size_t) n) {
        fprintf(stderr, "cannot read %s\n", path);
        fclose(f);
        free(buf);
        return 1;
    }

    fclose(f);

    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    replayed++;

    return 0;
}
