# Store benchmark: prints figures (name=value target=...); not registered with ctest.
add_executable(bench_store ${CMAKE_CURRENT_LIST_DIR}/bench_store.c
                           ${CMAKE_CURRENT_LIST_DIR}/bench_store_hits.c)
target_include_directories(bench_store PRIVATE ${SLUICE_TEST_INCLUDES})
target_link_libraries(bench_store PRIVATE sluice_store sluice_dispatch sluice_bench_util)
sluice_target_warnings(bench_store)
