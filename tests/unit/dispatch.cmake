# Unit tests of the dispatcher's pure modules (fake clock, no I/O).
set(D ${CMAKE_SOURCE_DIR}/server/dispatch)
sluice_test(test_ratelimit SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ratelimit.c ${D}/ratelimit.c
            LIBS m LABELS unit)
sluice_test(test_retry SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_retry.c ${D}/retry.c
            LIBS sluice_common LABELS unit)
sluice_test(test_feedback SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_feedback.c ${D}/feedback.c
            LIBS sluice_common m LABELS unit)
sluice_test(test_models SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_models.c ${D}/models.c
            ${D}/retry.c LIBS sluice_common LABELS unit)
sluice_test(test_timerheap SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_timerheap.c
            LIBS sluice_common LABELS unit)
sluice_test(test_common SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_common.c
            LIBS sluice_common LABELS unit)
