# Benchmarks of the dispatcher and the service (programs printing `name=value target=...`;
# never registered with ctest: timing is not a test). See README "Benchmarks".
add_library(sluice_bench_util STATIC ${CMAKE_CURRENT_LIST_DIR}/bench_util.c)
target_include_directories(sluice_bench_util PUBLIC ${SLUICE_TEST_INCLUDES})
target_link_libraries(sluice_bench_util PUBLIC sluice_fake_test_util PkgConfig::CURL)
sluice_target_warnings(sluice_bench_util)

add_executable(bench_dispatch ${CMAKE_CURRENT_LIST_DIR}/bench_dispatch.c)
target_include_directories(bench_dispatch PRIVATE ${SLUICE_TEST_INCLUDES})
target_link_libraries(bench_dispatch PRIVATE sluice_dispatch sluice_bench_util)
sluice_target_warnings(bench_dispatch)
add_dependencies(bench_dispatch sluice-fake-provider)

add_executable(bench_service ${CMAKE_CURRENT_LIST_DIR}/bench_service.c)
target_include_directories(bench_service PRIVATE ${SLUICE_TEST_INCLUDES})
target_link_libraries(bench_service PRIVATE sluice sluice_proto sluice_rpc sluice_http sluice_bench_util
                                            Threads::Threads)
sluice_target_warnings(bench_service)
add_dependencies(bench_service sluice-fake-provider sluiced)
