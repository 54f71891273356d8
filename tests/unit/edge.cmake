# The request edge: UTF-8 validation (server/common/utf8.c) and the walk over every string
# of a decoded message that the transport runs on each request (server/transport/msgcheck.c).
sluice_test(test_utf8 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_utf8.c LIBS sluice_common
            LABELS unit)
sluice_test(test_msgcheck SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_msgcheck.c
            ${CMAKE_SOURCE_DIR}/server/transport/msgcheck.c LIBS sluice_common sluice_proto
            LABELS unit transport)
