# Store module: codec, cache keys, and the RocksDB store itself.
sluice_test(test_codec SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_codec.c LIBS sluice_store
            LABELS unit store)
sluice_test(test_cachekey SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cachekey.c LIBS sluice_store
            LABELS unit store)
sluice_test(test_store SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_store.c LIBS sluice_store
            LABELS unit store TIMEOUT 600)
sluice_test(test_store_sizes SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_store_sizes.c
            LIBS sluice_store LABELS unit store TIMEOUT 600)
