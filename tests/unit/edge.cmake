# The request edge: UTF-8 validation (server/common/utf8.c).
sluice_test(test_utf8 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_utf8.c LIBS sluice_common
            LABELS unit)
