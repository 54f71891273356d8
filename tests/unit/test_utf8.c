/* server/common/utf8: validation (Unicode Table 3-7), repair and whole-character cuts. */
#include "server/common/utf8.h"
#include "unit/test_util.h"

#include <stdlib.h>
#include <string.h>

static bool valid(const char *s, size_t len) {
    return utf8_valid(s, len, NULL);
}

#define VALID(lit) CU_ASSERT_TRUE(valid(lit, sizeof lit - 1))
#define INVALID(lit) CU_ASSERT_FALSE(valid(lit, sizeof lit - 1))

static void test_accepts_every_well_formed_range(void) {
    VALID("");
    VALID("plain ASCII, long enough for the eight-byte steps");
    VALID("\x7f");
    VALID("\xc2\x80");                     /* U+0080 */
    VALID("\xdf\xbf");                     /* U+07FF */
    VALID("\xe0\xa0\x80");                 /* U+0800 */
    VALID("\xed\x9f\xbf");                 /* U+D7FF, just below the surrogates */
    VALID("\xee\x80\x80");                 /* U+E000, just above them */
    VALID("\xef\xbf\xbf");                 /* U+FFFF */
    VALID("\xf0\x90\x80\x80");             /* U+10000 */
    VALID("\xf4\x8f\xbf\xbf");             /* U+10FFFF, the last code point */
    VALID("a\0b");                         /* U+0000 is UTF-8 too (within len) */
    VALID("caf\xc3\xa9 \xf0\x9f\x98\x80"); /* mixed */
}

static void test_rejects_the_ill_formed(void) {
    INVALID("\xff"); /* the session name that crashed sluiced */
    INVALID("\xfe");
    INVALID("\x80");             /* a stray continuation byte */
    INVALID("\xc0\x80");         /* overlong NUL */
    INVALID("\xc1\xbf");         /* overlong U+007F */
    INVALID("\xe0\x80\x80");     /* overlong 3-byte */
    INVALID("\xe0\x9f\xbf");     /* overlong U+07FF */
    INVALID("\xf0\x80\x80\x80"); /* overlong 4-byte */
    INVALID("\xf0\x8f\xbf\xbf"); /* overlong U+FFFF */
    INVALID("\xed\xa0\x80");     /* U+D800, a surrogate */
    INVALID("\xed\xbf\xbf");     /* U+DFFF */
    INVALID("\xf4\x90\x80\x80"); /* U+110000 */
    INVALID("\xf5\x80\x80\x80");
    INVALID("\xc3"); /* cut short at the end */
    INVALID("\xe2\x82");
    INVALID("\xf0\x9f\x98");
    INVALID("\xe2\x82\x41"); /* cut short before more text ("A") */
    INVALID("\xc3\xc3\xa9");
}

static void test_reports_the_first_bad_byte(void) {
    size_t at = 99;
    CU_ASSERT_FALSE(utf8_valid("\xff", 1, &at));
    CU_ASSERT_EQUAL(at, 0);
    const char *s = "abcdefghij\xc3\xa9k\xed\xa0\x80";
    CU_ASSERT_FALSE(utf8_valid(s, strlen(s), &at));
    CU_ASSERT_EQUAL(at, 13); /* after eight-byte ASCII steps and a good character */
    at = 99;
    CU_ASSERT_TRUE(utf8_valid("ok", 2, &at));
    CU_ASSERT_EQUAL(at, 99); /* untouched */
}

/* In the expectations below, EF BF BD is U+FFFD, and a letter right after a \x escape is
 * written in hex too (\x41 "A", \x62 "b"), since C would read it as part of the escape. */
static void test_repair_replaces_maximal_subparts(void) {
    char out[64];
    CU_ASSERT_EQUAL(utf8_copy_valid(out, sizeof out, "a\xff\x62"), 5);
    CU_ASSERT_STRING_EQUAL(out, "a\xef\xbf\xbd\x62");
    /* E2 82 could still have begun a character: one replacement for both */
    utf8_copy_valid(out, sizeof out, "\xe2\x82\x41");
    CU_ASSERT_STRING_EQUAL(out, "\xef\xbf\xbd\x41");
    /* F0 80 80: F0 cannot be followed by 80, so each byte is its own subpart */
    utf8_copy_valid(out, sizeof out, "\xf0\x80\x80");
    CU_ASSERT_STRING_EQUAL(out, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    utf8_copy_valid(out, sizeof out, NULL);
    CU_ASSERT_STRING_EQUAL(out, "");
    char *d = utf8_dup_valid("x\xc0\x80y");
    CU_ASSERT_STRING_EQUAL(d, "x\xef\xbf\xbd\xef\xbf\xbdy");
    CU_ASSERT_TRUE(valid(d, strlen(d)));
    free(d);
    d = utf8_dup_valid("caf\xc3\xa9");
    CU_ASSERT_STRING_EQUAL(d, "caf\xc3\xa9");
    free(d);
}

static void test_cuts_only_between_characters(void) {
    char out[4];
    /* "a" + U+00E9 + "b" into 4 bytes: fits exactly */
    CU_ASSERT_EQUAL(utf8_copy_valid(out, sizeof out, "a\xc3\xa9\x62"), 3);
    CU_ASSERT_STRING_EQUAL(out, "a\xc3\xa9");
    /* a 3-byte character that does not fit after "ab" is left out whole */
    CU_ASSERT_EQUAL(utf8_copy_valid(out, sizeof out, "ab\xe2\x82\xac"), 2);
    CU_ASSERT_STRING_EQUAL(out, "ab");
    CU_ASSERT_EQUAL(utf8_copy_valid(out, 1, "abc"), 0);
    CU_ASSERT_EQUAL(utf8_whole_prefix("abc\xe2\x82", 5), 3);
    CU_ASSERT_EQUAL(utf8_whole_prefix("abc\xe2\x82\xac", 6), 6);
    CU_ASSERT_EQUAL(utf8_whole_prefix("ab\xc3", 3), 2);
    CU_ASSERT_EQUAL(utf8_whole_prefix("ab\xf0\x9f\x98", 5), 2);
    CU_ASSERT_EQUAL(utf8_whole_prefix("plain", 5), 5);
    CU_ASSERT_EQUAL(utf8_whole_prefix("\x80\x80", 2), 2); /* not a cut: left alone */
}

int main(void) {
    static const test_case cases[] = {
        {"accepts every well-formed range", test_accepts_every_well_formed_range},
        {"rejects overlongs, surrogates, > U+10FFFF, cut sequences", test_rejects_the_ill_formed},
        {"reports the first bad byte", test_reports_the_first_bad_byte},
        {"repair replaces maximal subparts", test_repair_replaces_maximal_subparts},
        {"cuts only between characters", test_cuts_only_between_characters},
        {NULL, NULL},
    };
    return test_run_suite("utf8", cases);
}
