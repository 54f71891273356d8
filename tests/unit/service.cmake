# Unit tests of the service layer's pure modules.
sluice_test(test_sessrec SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sessrec.c LIBS sluice_service
            LABELS unit)
sluice_test(test_convert SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_convert.c LIBS sluice_service
            LABELS unit)
sluice_test(test_waitfit SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_waitfit.c LIBS sluice_service
            LABELS unit)
