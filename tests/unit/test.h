/* tests/unit/test.h — the unit tests' tiny harness. Each test binary
 * registers cases with TEST(name){...}, runs them all (or those named on
 * the command line) and prints TAP, one line per case, so meson and
 * .ci/run can count cases, not just binaries. A failed CHECK records the
 * file, line and expression and ends that case. */
#ifndef EPODE_TEST_H
#define EPODE_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
struct test_case { const char *name; test_fn fn; };

#define TEST_MAX 512
extern struct test_case test__cases[TEST_MAX];
extern int test__count;
extern int test__failed_now;

#define TEST(name)                                                             \
    static void test_##name(void);                                             \
    __attribute__((constructor)) static void test__reg_##name(void)            \
    {                                                                          \
        if (test__count < TEST_MAX)                                            \
            test__cases[test__count++] = (struct test_case){#name, test_##name}; \
    }                                                                          \
    static void test_##name(void)

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            printf("# %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);  \
            test__failed_now = 1;                                              \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CHECK_INT(a, b)                                                        \
    do {                                                                       \
        long long test__a = (long long)(a), test__b = (long long)(b);          \
        if (test__a != test__b) {                                              \
            printf("# %s:%d: %s == %lld, expected %s == %lld\n", __FILE__,     \
                   __LINE__, #a, test__a, #b, test__b);                        \
            test__failed_now = 1;                                              \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CHECK_STR(a, b)                                                        \
    do {                                                                       \
        const char *test__a = (a), *test__b = (b);                             \
        if (!test__a || !test__b || strcmp(test__a, test__b) != 0) {           \
            printf("# %s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__,       \
                   __LINE__, #a, test__a ? test__a : "(null)",                 \
                   test__b ? test__b : "(null)");                              \
            test__failed_now = 1;                                              \
            return;                                                            \
        }                                                                      \
    } while (0)

/* Define once per binary (in exactly one file): TEST_MAIN */
#define TEST_MAIN                                                              \
    struct test_case test__cases[TEST_MAX];                                    \
    int test__count;                                                           \
    int test__failed_now;                                                      \
    int main(int argc, char **argv)                                            \
    {                                                                          \
        int failed = 0, run = 0;                                               \
        for (int i = 0; i < test__count; i++) {                                \
            int want = argc < 2;                                               \
            for (int a = 1; a < argc; a++)                                     \
                if (strcmp(argv[a], test__cases[i].name) == 0) want = 1;       \
            if (!want) continue;                                               \
            run++;                                                             \
        }                                                                      \
        printf("1..%d\n", run);                                                \
        int n = 0;                                                             \
        for (int i = 0; i < test__count; i++) {                                \
            int want = argc < 2;                                               \
            for (int a = 1; a < argc; a++)                                     \
                if (strcmp(argv[a], test__cases[i].name) == 0) want = 1;       \
            if (!want) continue;                                               \
            test__failed_now = 0;                                              \
            test__cases[i].fn();                                               \
            fflush(stdout);                                                    \
            printf("%sok %d - %s\n", test__failed_now ? "not " : "", ++n,      \
                   test__cases[i].name);                                       \
            failed += test__failed_now;                                        \
        }                                                                      \
        return failed ? 1 : 0;                                                 \
    }

#endif
