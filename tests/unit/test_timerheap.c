/* The intrusive timer heap: order, reschedule, cancel. */
#include "server/common/timerheap.h"
#include "unit/test_util.h"

static void test_order_and_cancel(void) {
    theap h;
    theap_init(&h);
    theap_node n[100];
    uint64_t rng = 99;
    for (int i = 0; i < 100; i++) {
        theap_node_init(&n[i], 1);
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        theap_schedule(&h, &n[i], rng >> 40);
    }
    for (int i = 0; i < 100; i += 3)
        theap_cancel(&h, &n[i]);
    theap_schedule(&h, &n[1], 5);           /* move earlier */
    theap_schedule_earliest(&h, &n[1], 50); /* no-op: already earlier */
    uint64_t last = 0;
    int popped = 0;
    theap_node *x;
    while ((x = theap_pop_due(&h, UINT64_MAX))) {
        CU_ASSERT_TRUE(x->when_us >= last);
        CU_ASSERT_FALSE(theap_scheduled(x));
        if (popped == 0)
            CU_ASSERT_PTR_EQUAL(x, &n[1]);
        last = x->when_us;
        popped++;
    }
    CU_ASSERT_EQUAL(popped, 100 - 34);
    theap_cleanup(&h);
}

static void test_pop_due_only(void) {
    theap h;
    theap_init(&h);
    theap_node a, b;
    theap_node_init(&a, 1);
    theap_node_init(&b, 2);
    theap_schedule(&h, &a, 10);
    theap_schedule(&h, &b, 20);
    CU_ASSERT_PTR_NULL(theap_pop_due(&h, 9));
    CU_ASSERT_PTR_EQUAL(theap_pop_due(&h, 15), &a);
    CU_ASSERT_PTR_NULL(theap_pop_due(&h, 15));
    CU_ASSERT_PTR_EQUAL(theap_peek(&h), &b);
    theap_cleanup(&h);
    CU_ASSERT_FALSE(theap_scheduled(&b));
}

int main(void) {
    static const test_case cases[] = {
        {"order_and_cancel", test_order_and_cancel},
        {"pop_due_only", test_pop_due_only},
        {NULL, NULL},
    };
    return test_run_suite("timerheap", cases);
}
